%% The events as JSON: the envelope, what a message event says and what it
%% keeps back. From a real server through RabbitMQ, checked against the
%% schema: molecule/default/tests/test_event_bus.py.
-module(mod_event_bus_tests).

-include_lib("eunit/include/eunit.hrl").
%% Debian packages the xmpp library as p1_xmpp (bookworm: only so).
-include_lib("p1_xmpp/include/xmpp.hrl").

message(SubEls) ->
    #message{id = <<"m1">>, type = chat, body = [#text{data = <<"hello">>}],
             sub_els = SubEls}.

%% A fixed instant, Unix time 10^9 s and 123456 us: what is checked is the format.
-define(INSTANT_US, 1000000000123456).

the_envelope_is_versioned_and_dated_test() ->
    #{<<"version">> := 1, <<"id">> := Id, <<"type">> := <<"user.login">>,
      <<"time">> := Time, <<"host">> := <<"chat.test">>, <<"data">> := #{}} =
        mod_event_bus:envelope(<<"chat.test">>, 'user.login', ?INSTANT_US, #{}),
    ?assertEqual(<<"2001-09-09T01:46:40.123456Z">>, Time),
    ?assertMatch({match, _}, re:run(Id, "^[0-9a-f]{32}$")),
    #{<<"id">> := Other} = mod_event_bus:envelope(<<"h">>, 'user.login', 0, #{}),
    ?assertNotEqual(Id, Other).

a_message_is_metadata_unless_bodies_are_on_test() ->
    Pkt = message([#origin_id{id = <<"o1">>}]),
    Meta = mod_event_bus:message_data(Pkt, false, ?INSTANT_US),
    ?assertEqual(#{<<"message_id">> => <<"m1">>, <<"origin_id">> => <<"o1">>,
                   <<"stanza_id">> => <<"1000000000123456">>, <<"file">> => false,
                   <<"encryption">> => null}, Meta),
    ?assertEqual(Meta#{<<"body">> => <<"hello">>},
                 mod_event_bus:message_data(Pkt, true, ?INSTANT_US)).

an_encrypted_message_never_gives_its_fallback_text_test() ->
    Omemo = #xmlel{name = <<"encrypted">>,
                   attrs = [{<<"xmlns">>, <<"eu.siacs.conversations.axolotl">>}]},
    Data = mod_event_bus:message_data(message([Omemo]), true, undefined),
    ?assertEqual(<<"omemo">>, maps:get(<<"encryption">>, Data)),
    ?assertNot(maps:is_key(<<"body">>, Data)),
    ?assertEqual(null, maps:get(<<"stanza_id">>, Data)).

a_shared_file_is_marked_test() ->
    Pkt = message([#oob_x{url = <<"https://chat.test:5280/upload/a/b.jpg">>}]),
    ?assertMatch(#{<<"file">> := true}, mod_event_bus:message_data(Pkt, false, undefined)).

a_chat_state_or_receipt_is_no_event_test() ->
    State = #message{type = chat, sub_els = [#chatstate{type = composing}]},
    ?assertEqual(none, mod_event_bus:message_data(State, true, undefined)).

%% With the encoder the module chooses on this Erlang (OTP 27's json, or jiffy), as it runs.
encodes_to_json_test() ->
    persistent_term:put({mod_event_bus, encoder}, mod_event_bus:encoder()),
    try
        Json = mod_event_bus:encode(#{<<"a">> => null, <<"b">> => true,
                                      <<"c">> => <<"é"/utf8>>, <<"d">> => 7}),
        ?assertEqual(#{<<"a">> => null, <<"b">> => true, <<"c">> => <<"é"/utf8>>,
                       <<"d">> => 7}, jiffy:decode(Json, [return_maps]))
    after
        persistent_term:erase({mod_event_bus, encoder})
    end.
