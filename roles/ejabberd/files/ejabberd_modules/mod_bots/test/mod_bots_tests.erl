-module(mod_bots_tests).

-include_lib("eunit/include/eunit.hrl").
-include_lib("p1_xmpp/include/xmpp.hrl").

bots() ->
    {ok, Bots} = mod_bots:parse(<<"{\"bots\": [\"assistant\", \"helpdesk\"]}">>),
    Bots.

message(From, To, Els) ->
    #message{type = chat, id = <<"m1">>, from = jid:decode(From), to = jid:decode(To),
             body = [#text{data = <<"hello, bot">>}], sub_els = Els}.

the_list_is_read_test() ->
    ?assertEqual(#{<<"assistant">> => true, <<"helpdesk">> => true}, bots()),
    ?assertEqual({ok, #{}}, mod_bots:parse(<<"{\"bots\": []}">>)).

a_bad_list_says_what_is_wrong_test() ->
    ?assertEqual({error, <<"not JSON">>}, mod_bots:parse(<<"{nope">>)),
    ?assertEqual({error, <<"not a list of bots">>}, mod_bots:parse(<<"[\"a\"]">>)),
    [?assertMatch({error, <<_/binary>>}, mod_bots:parse(Json))
     || Json <- [<<"{\"bots\": [\"Assistant\"]}">>, <<"{\"bots\": [\"a.b\"]}">>,
                 <<"{\"bots\": [\"\"]}">>, <<"{\"bots\": [3]}">>,
                 <<"{\"bots\": [\"", (binary:copy(<<"a">>, 33))/binary, "\"]}">>]],
    ?assertMatch({error, <<"<<\"a b\">> is not a bot's name", _/binary>>},
                 mod_bots:parse(<<"{\"bots\": [\"a b\"]}">>)).

a_message_to_a_bot_is_taken_test() ->
    Bots = bots(),
    ?assert(mod_bots:taken(message(<<"ann@example.org/phone">>, <<"assistant@example.org">>, []),
                           Bots)),
    ?assertNot(mod_bots:taken(message(<<"ann@example.org/phone">>, <<"bob@example.org">>, []),
                              Bots)),
    %% Another server's assistant is not this host's bot.
    ?assertEqual(true, mod_bots:taken(message(<<"assistant@other.example/x">>,
                                              <<"helpdesk@example.org">>, []), Bots)),
    %% Bots do not answer bots.
    ?assertEqual(from_bot, mod_bots:taken(message(<<"helpdesk@example.org/api">>,
                                                  <<"assistant@example.org">>, []), Bots)).

the_event_carries_the_text_and_who_wrote_it_test() ->
    ?assertEqual(#{<<"bot">> => <<"assistant">>, <<"from">> => <<"ann@example.org">>,
                   <<"to">> => <<"assistant@example.org">>, <<"message_id">> => <<"m1">>,
                   <<"text">> => <<"hello, bot">>, <<"encryption">> => null},
                 mod_bots:event(message(<<"ann@example.org/phone">>,
                                        <<"assistant@example.org/any">>, []))).

an_encrypted_message_carries_no_text_test() ->
    Omemo = #xmlel{name = <<"encrypted">>, attrs = [{<<"xmlns">>, <<"eu.siacs.conversations.axolotl">>}]},
    Event = mod_bots:event(message(<<"ann@example.org/phone">>, <<"assistant@example.org">>,
                                   [Omemo])),
    ?assertMatch(#{<<"text">> := null, <<"encryption">> := <<"omemo">>}, Event).
