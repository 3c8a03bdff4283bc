%% Which sessions get the browser's shorter wait; the waits themselves, with
%% a real tab and a real app whose connections drop:
%% molecule/default/tests/test_member_apps.py.
-module(mod_web_resume_tests).

-include_lib("eunit/include/eunit.hrl").

-define(APP, 300000).
-define(WEB, 30000).

browsers_wait_less_test_() ->
    [?_assertEqual(?WEB, mod_web_resume:timeout_for(T, ?WEB, ?APP))
     || T <- [websocket, http_bind]].

apps_keep_theirs_test_() ->
    [?_assertEqual(keep, mod_web_resume:timeout_for(T, ?WEB, ?APP))
     || T <- [tcp, tls, tls_compressed]].

never_longer_than_the_session_has_test() ->
    ?assertEqual(keep, mod_web_resume:timeout_for(websocket, ?WEB, 10000)).
