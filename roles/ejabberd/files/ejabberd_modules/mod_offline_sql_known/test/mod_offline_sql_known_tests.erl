%% A user outside the set of users with spooled messages is answered without
%% a query: with no ejabberd running here, any SQL call would crash the test.
-module(mod_offline_sql_known_tests).

-include_lib("eunit/include/eunit.hrl").

-define(HOST, <<"chat.example.org">>).

with_set(Members, Test) ->
    Set = gen_mod:get_module_proc(?HOST, mod_offline_sql_known_users),
    ets:new(Set, [set, public, named_table]),
    ets:insert(Set, [{User} || User <- Members]),
    try Test() after ets:delete(Set) end.

nothing_spooled_is_answered_from_the_set_test() ->
    with_set([<<"bob">>], fun() ->
        ?assertEqual({ok, []}, mod_offline_sql_known:pop_messages(<<"alice">>, ?HOST)),
        ?assertEqual({cache, 0}, mod_offline_sql_known:count_messages(<<"alice">>, ?HOST))
    end).

a_member_is_asked_of_the_database_test() ->
    %% Bob has messages: the backend goes to mod_offline_sql, which fails
    %% without a running ejabberd; that it does not answer "none" is the point.
    with_set([<<"bob">>], fun() ->
        Popped = try mod_offline_sql_known:pop_messages(<<"bob">>, ?HOST) of
                     Answer -> {answered, Answer}
                 catch Class:_ -> {asked_the_database, Class}
                 end,
        ?assertNotEqual({answered, {ok, []}}, Popped)
    end).
