%% A user outside the set of users with push registrations is answered
%% without a query: with no ejabberd running here, any SQL call would crash
%% the test.
-module(mod_push_sql_known_tests).

-include_lib("eunit/include/eunit.hrl").

-define(HOST, <<"chat.example.org">>).

with_set(Members, Test) ->
    Set = gen_mod:get_module_proc(?HOST, mod_push_sql_known_users),
    ets:new(Set, [set, public, named_table]),
    ets:insert(Set, [{User} || User <- Members]),
    try Test() after ets:delete(Set) end.

asked(Lookup) ->
    try Lookup() of
        Answer -> {answered, Answer}
    catch Class:_ -> {asked_the_database, Class}
    end.

nobody_registered_is_answered_from_the_set_test() ->
    with_set([<<"bob">>], fun() ->
        Push = {<<>>, <<"push.example.net">>, <<>>},
        ?assertEqual({ok, []}, mod_push_sql_known:lookup_sessions(<<"alice">>, ?HOST)),
        ?assertEqual({ok, []}, mod_push_sql_known:lookup_sessions(<<"alice">>, ?HOST, Push)),
        ?assertEqual({error, notfound},
                     mod_push_sql_known:lookup_session(<<"alice">>, ?HOST, {1, 2, 3})),
        ?assertEqual({error, notfound},
                     mod_push_sql_known:lookup_session(<<"alice">>, ?HOST, Push, <<"n">>))
    end).

a_registered_user_is_asked_of_the_database_test() ->
    %% Bob has a registration: the backend goes to mod_push_sql, which fails
    %% without a running ejabberd; that it does not answer "none" is the point.
    with_set([<<"bob">>], fun() ->
        ?assertNotEqual({answered, {ok, []}},
                        asked(fun() -> mod_push_sql_known:lookup_sessions(<<"bob">>, ?HOST) end))
    end).

without_a_set_the_database_is_asked_test() ->
    %% The set not loaded (yet): never "none" on its say-so.
    ?assertNotEqual({answered, {ok, []}},
                    asked(fun() -> mod_push_sql_known:lookup_sessions(<<"alice">>, ?HOST) end)).
