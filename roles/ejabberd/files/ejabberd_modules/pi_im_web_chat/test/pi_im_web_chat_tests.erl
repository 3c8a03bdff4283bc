%% The settings the page reads; the page itself, served by address and by the
%% domain and signed in from Chromium: molecule/default/tests/test_web_chat.py.
-module(pi_im_web_chat_tests).

-include_lib("eunit/include/eunit.hrl").

settings_name_the_domain_test() ->
    ?assertEqual(#{<<"domain">> => <<"chat.example.org">>},
                 json_decode(pi_im_web_chat:settings(<<"chat.example.org">>))).

converse_is_kept_for_good_the_page_is_asked_again_test_() ->
    Kept = <<"public, max-age=31536000, immutable">>,
    Converse = [<<"converse-14.0.0">>, <<"dist">>, <<"converse.min.js">>],
    [?_assertEqual(Kept, pi_im_web_chat:cache_control(200, Converse)),
     ?_assertEqual(Kept, pi_im_web_chat:cache_control(304, Converse)),
     ?_assertEqual(<<"no-cache">>, pi_im_web_chat:cache_control(404, Converse)),
     ?_assertEqual(<<"no-cache">>, pi_im_web_chat:cache_control(200, [])),
     ?_assertEqual(<<"no-cache">>, pi_im_web_chat:cache_control(200, [<<"index.html">>])),
     ?_assertEqual(<<"no-cache">>, pi_im_web_chat:cache_control(200, [<<"pi-im-chat.js">>]))].

%% jiffy on 23.01, OTP's json on 24.12's Erlang: whichever this VM has.
json_decode(Binary) ->
    case code:which(json) of
        non_existing -> jiffy:decode(Binary, [return_maps]);
        _ -> json:decode(Binary)
    end.
