%% The writer's parts that need no running ejabberd: which copies may skip
%% waiting, how queued stores are taken from the mailbox, and the rows it
%% builds (the live node compares whole rows with mod_mam_sql's in Molecule).
-module(mod_mam_sql_grouped_tests).

-include_lib("eunit/include/eunit.hrl").

-define(HOST, <<"chat.example.org">>).

%% The sender's copy of a chat to a user of this host is followed by the
%% recipient's through the same writer; nothing else may skip waiting.
ahead_of_recipient_copy_test_() ->
    Local = jid:decode(<<"bob@chat.example.org/phone">>),
    Remote = jid:decode(<<"bob@elsewhere.example/phone">>),
    [?_assert(mod_mam_sql_grouped:ahead_of_recipient_copy(?HOST, chat, Local, send)),
     ?_assertNot(mod_mam_sql_grouped:ahead_of_recipient_copy(?HOST, chat, Local, recv)),
     ?_assertNot(mod_mam_sql_grouped:ahead_of_recipient_copy(?HOST, chat, Remote, send)),
     ?_assertNot(mod_mam_sql_grouped:ahead_of_recipient_copy(?HOST, groupchat, Local, send))].

%% Calls and casts of {store, _} in mailbox order, at most Room of them;
%% any other message stays where it is.
queued_stores_test() ->
    From = {self(), make_ref()},
    self() ! {'$gen_cast', {store, one}},
    self() ! unrelated,
    self() ! {'$gen_call', From, {store, two}},
    self() ! {'$gen_cast', {store, three}},
    self() ! {'$gen_cast', {store, four}},
    ?assertEqual([{nobody, one}, {From, two}, {nobody, three}],
                 mod_mam_sql_grouped:queued_stores(3)),
    ?assertEqual([{nobody, four}], mod_mam_sql_grouped:queued_stores(3)),
    ?assertEqual([], mod_mam_sql_grouped:queued_stores(3)),
    ?assertEqual(unrelated, receive Any -> Any after 0 -> empty end).

%% Quotes doubled, as ejabberd's own SQLite literals, for any text.
literal_is_ejabberds_sqlite_literal_test_() ->
    Texts = [<<>>, <<"plain">>, <<"it's">>, <<"''">>, <<"caf", 233/utf8, " ", 128578/utf8>>,
             <<"a\nb\\c\"d">>, <<0, 1, 2>>],
    [?_assertEqual(iolist_to_binary(ejabberd_sql:to_string_literal(sqlite, Text)),
                   iolist_to_binary(mod_mam_sql_grouped:literal(Text)))
     || Text <- Texts]
    ++ [?_assertEqual(<<"42">>, iolist_to_binary(mod_mam_sql_grouped:literal(42)))].

message(Body) ->
    {xmlel, <<"message">>, [{<<"type">>, <<"chat">>}],
     [{xmlel, <<"body">>, [], [{xmlcdata, Body}]}]}.

%% Owner, [server_host,] timestamp, peer, bare peer, XML, body, kind, nick.
chat_row_test() ->
    Peer = jid:decode(<<"Bob@Chat.Example.org/Phone">>),
    Args = [message(<<"it's here">>), ?HOST, {<<"alice">>, ?HOST}, chat, Peer, <<>>, recv,
            1700000000000000],
    {ok, Row} = mod_mam_sql_grouped:row(false, false, Args),
    ?assertEqual(<<"('alice',1700000000000000,'bob@chat.example.org/Phone',"
                   "'bob@chat.example.org','<message type=''chat''><body>it&apos;s here"
                   "</body></message>','it''s here','chat','')">>, Row),
    {ok, NewSchema} = mod_mam_sql_grouped:row(true, false, Args),
    ?assertMatch(<<"('alice','chat.example.org',1700000000000000,", _/binary>>, NewSchema).

%% A room's archive belongs to the room's bare JID, with the sender's nick.
groupchat_row_test() ->
    Peer = jid:decode(<<"room@conference.chat.example.org/O'Brien">>),
    Args = [message(<<"hi">>), ?HOST, {<<"room">>, <<"conference.chat.example.org">>},
            groupchat, Peer, <<"O'Brien">>, recv, 1],
    {ok, Row} = mod_mam_sql_grouped:row(false, false, Args),
    ?assertMatch(<<"('room@conference.chat.example.org',1,", _/binary>>, Row),
    ?assertEqual(<<",'hi','groupchat','O''Brien')">>,
                 binary:part(Row, byte_size(Row), -byte_size(<<",'hi','groupchat','O''Brien')">>))).

%% A message without a body is archived with an empty text column.
bodiless_row_test() ->
    Pkt = {xmlel, <<"message">>, [], [{xmlel, <<"subject">>, [], [{xmlcdata, <<"s">>}]}]},
    Args = [Pkt, ?HOST, {<<"alice">>, ?HOST}, chat, jid:decode(<<"bob@chat.example.org">>),
            <<>>, send, 5],
    {ok, Row} = mod_mam_sql_grouped:row(false, false, Args),
    ?assertMatch(<<_/binary>>, Row),
    ?assertNotEqual(nomatch, binary:match(Row, <<"</message>','','chat','')">>)).

%% ejabberd 24.12's store/10 adds the message's origin-id: the row's last column.
origin_id_row_test() ->
    Peer = jid:decode(<<"bob@chat.example.org/phone">>),
    Args8 = [message(<<"hi">>), ?HOST, {<<"alice">>, ?HOST}, chat, Peer, <<>>, recv, 7],
    {ok, Row8} = mod_mam_sql_grouped:row(false, false, Args8),
    {ok, Row10} = mod_mam_sql_grouped:row(false, false, Args8 ++ [<<"o'1">>, false]),
    ?assertEqual(<<(binary:part(Row8, 0, byte_size(Row8) - 1))/binary, ",'o''1')">>, Row10).

%% Copies held for a full disk keep their order; beyond the bound the oldest
%% go, and are counted.
held_keeps_order_and_drops_the_oldest_beyond_the_bound_test() ->
    {Q1, 4, 0} = mod_mam_sql_grouped:held([<<"ab">>, <<"cd">>], queue:new(), 0, 10),
    ?assertEqual([<<"ab">>, <<"cd">>], queue:to_list(Q1)),
    {Q2, 8, 0} = mod_mam_sql_grouped:held([<<"efgh">>], Q1, 4, 10),
    ?assertEqual([<<"ab">>, <<"cd">>, <<"efgh">>], queue:to_list(Q2)),
    {Q3, 9, 2} = mod_mam_sql_grouped:held([<<"ijklm">>], Q2, 8, 10),
    ?assertEqual([<<"efgh">>, <<"ijklm">>], queue:to_list(Q3)),
    %% A row larger than the bound alone is not held at all.
    {Q4, 0, 3} = mod_mam_sql_grouped:held([<<"0123456789ab">>], Q3, 9, 10),
    ?assert(queue:is_empty(Q4)).

%% SQLite's "database or disk is full", however ejabberd's SQL layer wraps it;
%% any other refusal is not.
disk_full_test_() ->
    [?_assert(mod_mam_sql_grouped:disk_full("database or disk is full")),
     ?_assert(mod_mam_sql_grouped:disk_full(<<"database or disk is full">>)),
     ?_assert(mod_mam_sql_grouped:disk_full({aborted, "database or disk is full"})),
     ?_assertNot(mod_mam_sql_grouped:disk_full("UNIQUE constraint failed: archive.id")),
     ?_assertNot(mod_mam_sql_grouped:disk_full(timeout))].
