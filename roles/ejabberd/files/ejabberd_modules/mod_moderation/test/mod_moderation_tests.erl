-module(mod_moderation_tests).

-include_lib("eunit/include/eunit.hrl").
-include_lib("p1_xmpp/include/xmpp.hrl").

document() ->
    <<"{\"keep_text\": false, \"rules\": ["
      "{\"id\": 1, \"kind\": \"word\", \"text\": \"darn\", \"action\": \"mask\"},"
      "{\"id\": 2, \"kind\": \"pattern\", \"text\": \"buy\\\\s+now\", \"action\": \"block\"}]}">>.

set() ->
    {ok, KeepText, Rules} = mod_moderation:parse(document()),
    {ok, Compiled} = mod_moderation_rules:compile(Rules),
    #{keep_text => KeepText, compiled => Compiled}.

message(Bodies) ->
    #message{type = chat, from = jid:decode(<<"ann@example.org/phone">>),
             to = jid:decode(<<"bob@example.org">>),
             body = [#text{lang = Lang, data = Data} || {Lang, Data} <- Bodies]}.

the_document_is_read_test() ->
    ?assertMatch({ok, false, [#{id := 1, kind := word, text := <<"darn">>, action := mask},
                              #{id := 2, kind := pattern, action := block}]},
                 mod_moderation:parse(document())).

a_bad_document_says_what_is_wrong_test() ->
    ?assertEqual({error, <<"not JSON">>}, mod_moderation:parse(<<"{nope">>)),
    ?assertEqual({error, <<"not a rules document">>}, mod_moderation:parse(<<"[1, 2]">>)),
    ?assertMatch({error, <<"a rule needs", _/binary>>},
                 mod_moderation:parse(<<"{\"keep_text\": false, \"rules\": "
                                        "[{\"id\": 1, \"kind\": \"phrase\", \"text\": \"x\", "
                                        "\"action\": \"block\"}]}">>)),
    ?assertMatch({error, <<"a rule needs", _/binary>>},
                 mod_moderation:parse(<<"{\"keep_text\": false, \"rules\": "
                                        "[{\"id\": 0, \"kind\": \"word\", \"text\": \"x\", "
                                        "\"action\": \"block\"}]}">>)).

a_clean_message_passes_test() ->
    ?assertEqual(pass, mod_moderation:apply_rules(message([{<<>>, <<"hello">>}]), set())).

every_body_is_checked_test() ->
    ?assertEqual({block, 2},
                 mod_moderation:apply_rules(
                   message([{<<"en">>, <<"hello">>}, {<<"de">>, <<"buy now">>}]), set())),
    {mask, Masked, [1]} = mod_moderation:apply_rules(
                            message([{<<"en">>, <<"darn">>}, {<<"de">>, <<"hallo">>}]), set()),
    ?assertEqual([<<"****">>, <<"hallo">>], [D || #text{data = D} <- Masked#message.body]).

an_encrypted_message_is_not_read_test() ->
    Omemo = #xmlel{name = <<"encrypted">>,
                   attrs = [{<<"xmlns">>, <<"eu.siacs.conversations.axolotl">>}]},
    Pkt = (message([{<<>>, <<"buy now: this is an OMEMO fallback">>}]))#message{
            sub_els = [Omemo]},
    ?assertEqual(pass, mod_moderation:apply_rules(Pkt, set())).

block(Items) ->
    #xmlel{name = <<"block">>, attrs = [{<<"xmlns">>, <<"urn:xmpp:blocking">>}],
           children = Items}.

item(Jid, Children) ->
    #xmlel{name = <<"item">>, attrs = [{<<"jid">>, Jid}], children = Children}.

text(Text) ->
    #xmlel{name = <<"text">>, attrs = [{<<"xmlns">>, <<"urn:xmpp:reporting:1">>}],
           children = [{xmlcdata, Text}]}.

spam_reports_are_read_in_both_versions_test() ->
    New = #xmlel{name = <<"report">>,
                 attrs = [{<<"xmlns">>, <<"urn:xmpp:reporting:1">>},
                          {<<"reason">>, <<"urn:xmpp:reporting:spam">>}],
                 children = [text(<<"sells pills">>)]},
    Old = #xmlel{name = <<"report">>, attrs = [{<<"xmlns">>, <<"urn:xmpp:reporting:0">>}],
                 children = [#xmlel{name = <<"abuse">>}]},
    ?assertEqual([{<<"spam@evil.example">>, <<"urn:xmpp:reporting:spam">>, <<"sells pills">>},
                  {<<"troll@evil.example">>, <<"urn:xmpp:reporting:abuse">>, <<>>}],
                 mod_moderation:reports(block([item(<<"spam@evil.example">>, [New]),
                                               item(<<"troll@evil.example">>, [Old])]))).

a_block_without_a_report_reports_nothing_test() ->
    ?assertEqual([], mod_moderation:reports(block([item(<<"ex@example.org">>, [])]))),
    Other = #xmlel{name = <<"report">>, attrs = [{<<"xmlns">>, <<"urn:example:other">>}]},
    ?assertEqual([], mod_moderation:reports(block([item(<<"ex@example.org">>, [Other])]))),
    ?assertEqual([], mod_moderation:reports(#xmlel{name = <<"unblock">>,
                                                   attrs = [{<<"xmlns">>, <<"urn:xmpp:blocking">>}]})).
