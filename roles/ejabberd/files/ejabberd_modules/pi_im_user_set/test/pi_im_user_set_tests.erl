%% The set's rule (never miss a user who has rows), on a table made here:
%% members are added before their rows are written and again after, and
%% dropped only once their rows are gone.
-module(pi_im_user_set_tests).

-include_lib("eunit/include/eunit.hrl").

-define(SET, pi_im_user_set_test_set).

with_set(Test) ->
    ets:new(?SET, [set, public, named_table]),
    try Test() after ets:delete(?SET) end.

no_set_means_ask_the_database_test() ->
    ?assertEqual(unknown, pi_im_user_set:member(?SET, <<"alice">>)),
    %% Adding or deleting without a set is harmless.
    ?assertEqual(ok, pi_im_user_set:add(?SET, <<"alice">>)),
    ?assertEqual(ok, pi_im_user_set:delete(?SET, <<"alice">>)).

members_test() ->
    with_set(fun() ->
        ?assertNot(pi_im_user_set:member(?SET, <<"alice">>)),
        pi_im_user_set:add(?SET, <<"alice">>),
        ?assert(pi_im_user_set:member(?SET, <<"alice">>)),
        ?assertNot(pi_im_user_set:member(?SET, <<"bob">>)),
        pi_im_user_set:delete(?SET, <<"alice">>),
        ?assertNot(pi_im_user_set:member(?SET, <<"alice">>))
    end).

a_writer_is_a_member_while_it_writes_test() ->
    with_set(fun() ->
        Result = pi_im_user_set:writing(?SET, <<"alice">>, fun() ->
            Member = pi_im_user_set:member(?SET, <<"alice">>),
            {written, Member}
        end),
        ?assertEqual({written, true}, Result),
        ?assert(pi_im_user_set:member(?SET, <<"alice">>))
    end).

a_delete_during_a_write_cannot_hide_its_row_test() ->
    %% A pop took the user out between the first add and the row's write:
    %% the second add puts them back, so the new row is found next time.
    with_set(fun() ->
        pi_im_user_set:writing(?SET, <<"alice">>, fun() ->
            pi_im_user_set:delete(?SET, <<"alice">>)
        end),
        ?assert(pi_im_user_set:member(?SET, <<"alice">>))
    end).

a_remover_stays_a_member_until_its_rows_are_gone_test() ->
    with_set(fun() ->
        pi_im_user_set:add(?SET, <<"alice">>),
        Result = pi_im_user_set:removing(?SET, <<"alice">>, fun() ->
            {removing, pi_im_user_set:member(?SET, <<"alice">>)}
        end),
        ?assertEqual({removing, true}, Result),
        ?assertNot(pi_im_user_set:member(?SET, <<"alice">>))
    end).
