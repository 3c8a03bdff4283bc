%% Which XMPP host a request is answered for; the documents themselves,
%% asked for by address, by localhost and by the domain:
%% molecule/default/tests/test_xmpp.py.
-module(pi_im_host_meta_tests).

-include_lib("eunit/include/eunit.hrl").

-define(HOSTS, [<<"chat.example.org">>, <<"club.example.org">>]).

a_served_domain_is_its_own_test() ->
    ?assertEqual(<<"club.example.org">>,
                 pi_im_host_meta:served(<<"club.example.org">>, ?HOSTS)).

an_address_or_another_name_is_the_first_domain_test_() ->
    [?_assertEqual(<<"chat.example.org">>, pi_im_host_meta:served(Name, ?HOSTS))
     || Name <- [<<"127.0.0.1">>, <<"192.168.1.20">>, <<"localhost">>,
                 <<"[::1]">>, <<"pi-im">>]].
