%% What the Molecule tests ask of the running ejabberd node (loaded into it
%% by conftest.probe, never part of the appliance). Each function works on
%% the node's first host and returns plain terms the tests read.
-module(pi_im_probe).

-export([module_option/2, cache_sizes/1, code_paths/0, sqlite_connection_settings/0,
         archive_writer/1, archived_copies/1, queue_one_group/2,
         rows_as_ejabberd_writes/2, archive_prefs_round_trip/1,
         store_aged_copies/1, archived_texts/1, remove_archive/1, offline_set/2,
         push_set/2, retraction/1]).

host() ->
    [Host | _] = ejabberd_option:hosts(),
    Host.

%% An option of a loaded module, as the node reads it now.
module_option(Module, Option) ->
    gen_mod:get_module_opt(host(), Module, Option).

%% The max_size of each named ets_cache.
cache_sizes(Caches) ->
    [{C, proplists:get_value(max_size, ets_cache:info(C))} || C <- Caches].

%% Where ejabberd's own application lives, and where our archive module was loaded from.
code_paths() ->
    {code:lib_dir(ejabberd), code:which(mod_mam_sql_grouped)}.

%% Page cache (negative: KiB) and checkpoint interval (pages) of the live SQLite connection.
sqlite_connection_settings() ->
    [begin
         {selected, _, [[Value]]} = ejabberd_sql:sql_query(host(), [<<"PRAGMA ", Name/binary>>]),
         binary_to_integer(Value)
     end || Name <- [<<"cache_size">>, <<"wal_autocheckpoint">>]].

writer() ->
    whereis(gen_mod:get_module_proc(host(), mod_mam_sql_grouped)).

%% Hold or release the archive's writer, or read its mailbox length or how many copies it
%% committed without a caller waiting.
archive_writer(suspend) -> sys:suspend(writer());
archive_writer(resume) -> sys:resume(writer());
archive_writer(queued) -> element(2, process_info(writer(), message_queue_len));
archive_writer(unwaited) -> maps:get(unwaited, mod_mam_sql_grouped:stats(host())).

quoted(Text) ->
    [$', binary:replace(Text, <<"'">>, <<"''">>, [global]), $'].

%% How many archive rows hold Text.
archived_copies(Text) ->
    {selected, _, [[N]]} = ejabberd_sql:sql_query(
                             host(), [[<<"select count(*) from archive where txt = ">>,
                                       quoted(Text)]]),
    binary_to_integer(N).

%% Suspend the writer, queue 20 stores for User (copy 7 bad as Bad says), resume it: what the
%% callers got, what the database holds once the queue is written, what the writer counted.
%% Bad: none; refused_by_sqlite (a trigger refuses copy 7's row); without_a_row (copy 7's
%% message has a child that is not XML, so no row can be built).
queue_one_group(User, Bad) ->
    Host = host(),
    mod_mam_sql_grouped = gen_mod:db_mod(Host, mod_mam),
    Writer = writer(),
    Before = mod_mam_sql_grouped:stats(Host),
    Peer = jid:decode(<<"peer@", Host/binary, "/phone">>),
    Me = self(),
    Store = fun(N) ->
        Text = case {N, Bad} of
                   {7, refused_by_sqlite} -> <<"refuse me">>;
                   _ -> integer_to_binary(N)
               end,
        Body = {xmlel, <<"body">>, [], [{xmlcdata, Text}]},
        Children = case {N, Bad} of
                       {7, without_a_row} -> [Body, not_an_element];
                       _ -> [Body]
                   end,
        Pkt = {xmlel, <<"message">>, [{<<"type">>, <<"chat">>}], Children},
        Me ! {stored, N, store(mod_mam_sql_grouped,
                               [Pkt, Host, {User, Host}, chat, Peer, <<>>, recv,
                                erlang:system_time(microsecond) + N], <<>>)}
    end,
    Bad == refused_by_sqlite andalso
        ({updated, _} = ejabberd_sql:sql_query(
                          Host, [<<"CREATE TEMP TRIGGER pi_im_refuse BEFORE INSERT ON archive "
                                   "WHEN NEW.txt = 'refuse me' "
                                   "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END">>])),
    ok = sys:suspend(Writer),
    Queued = try
                 [spawn(fun() -> Store(N) end) || N <- lists:seq(1, 20)],
                 wait_for_queue(Writer, 20, 200)
             after
                 sys:resume(Writer)
             end,
    Results = [receive {stored, N, R} -> {N, R} after 30000 -> {0, timeout} end
               || _ <- lists:seq(1, 20)],
    ok = mod_mam_sql_grouped:flush(Host),
    Bad == refused_by_sqlite andalso
        ({updated, _} = ejabberd_sql:sql_query(Host, [<<"DROP TRIGGER temp.pi_im_refuse">>])),
    After = mod_mam_sql_grouped:stats(Host),
    {selected, _, [[Rows]]} = ejabberd_sql:sql_query(
                                Host, [[<<"select count(*) from archive where username = ">>,
                                        quoted(User)]]),
    mod_mam_sql:remove_user(User, Host),
    Failed = case [N || {N, R} <- Results, R /= ok] of [] -> none; [F] -> F; _ -> many end,
    #{queued => Queued, oks => length([ok || {_, ok} <- Results]), failed => Failed,
      rows => binary_to_integer(Rows),
      stores => maps:get(stores, After) - maps:get(stores, Before),
      commits => maps:get(commits, After) - maps:get(commits, Before)}.

wait_for_queue(_Writer, _Length, 0) -> false;
wait_for_queue(Writer, Length, Tries) ->
    case process_info(Writer, message_queue_len) of
        {message_queue_len, Length} -> true;
        _ -> timer:sleep(50), wait_for_queue(Writer, Length, Tries - 1)
    end.

%% The same three copies (quotes, non-ASCII, markup, no body, a room with a nick) stored by
%% ejabberd's mod_mam_sql for Theirs and by ours for Ours: both sets of rows, the owner's name
%% replaced, must be equal.
rows_as_ejabberd_writes(Theirs, Ours) ->
    Host = host(),
    Peer = jid:decode(<<"Peer@", Host/binary, "/Phone 'one'">>),
    Text = <<"caf", 16#e9/utf8, " ", 16#1F642/utf8, " it's \"quoted\"\nline two">>,
    Messages = [
        {chat, <<>>, <<"o'1">>,
         <<"<message xmlns='jabber:client' type='chat' id='q1'><body>", Text/binary,
           " &amp; &lt;tag&gt;</body><origin-id xmlns='urn:xmpp:sid:0' id='o&apos;1'/>"
           "</message>">>},
        {chat, <<>>, <<>>, <<"<message xmlns='jabber:client' type='chat'><subject>no body"
                             "</subject></message>">>},
        {groupchat, <<"O'Brien">>, <<"o3">>,
         <<"<message xmlns='jabber:client' type='groupchat'><body>to the room</body>"
           "<origin-id xmlns='urn:xmpp:sid:0' id='o3'/></message>">>}],
    TS = erlang:system_time(microsecond),
    Write = fun(Mod, User) ->
        [store(Mod, [fxml_stream:parse_element(X), Host, {User, Host}, Type, Peer, Nick, recv,
                     TS + I], OriginID)
         || {I, {Type, Nick, OriginID, X}} <- lists:enumerate(Messages)]
    end,
    OriginIDColumn = case origin_id_column() of true -> <<", origin_id">>; false -> <<>> end,
    Read = fun(User) ->
        {selected, _, Rows} = ejabberd_sql:sql_query(Host, [[
            <<"select username, timestamp, peer, bare_peer, xml, txt, kind, nick">>,
            OriginIDColumn, <<" from archive where username in (">>, quoted(User), <<", ">>,
            quoted(<<User/binary, "@", Host/binary>>), <<") order by timestamp">>]]),
        [[binary:replace(Owner, User, <<"USER">>) | Rest] || [Owner | Rest] <- Rows]
    end,
    Stored = {Write(mod_mam_sql, Theirs), Write(mod_mam_sql_grouped, Ours)},
    ok = mod_mam_sql_grouped:flush(Host),
    {TheirRows, OurRows} = {Read(Theirs), Read(Ours)},
    [begin mod_mam_sql:remove_user(U, Host), mod_mam_sql:remove_room(Host, U, Host) end
     || U <- [Theirs, Ours]],
    #{stored => Stored, rows => {length(TheirRows), length(OurRows)},
      same => TheirRows =:= OurRows}.

%% "No preferences" from the set, a user's own read back, still after the set's owner
%% restarts (it reloads from the database), and gone with the user.
archive_prefs_round_trip(User) ->
    Host = host(),
    Proc = gen_mod:get_module_proc(Host, mod_mam_sql_grouped_prefs),
    Never = {archive_prefs, {User, Host}, never, [], []},
    None = mod_mam_sql_grouped:get_prefs(User, Host),
    ok = mod_mam_sql_grouped:write_prefs(User, Host, Never, Host),
    Written = mod_mam_sql_grouped:get_prefs(User, Host) =:= {ok, Never},
    restart(Proc),
    Reloaded = mod_mam_sql_grouped:get_prefs(User, Host) =:= {ok, Never},
    mod_mam_sql_grouped:remove_user(User, Host),
    Removed = mod_mam_sql_grouped:get_prefs(User, Host),
    #{none => None, written => Written, reloaded => Reloaded, removed => Removed}.

%% Kill a registered owner process and wait for its supervisor's new one to be ready.
restart(Name) ->
    Old = whereis(Name),
    exit(Old, kill),
    wait_for_new(Name, Old, 100).

wait_for_new(_Name, _Old, 0) -> gave_up;
wait_for_new(Name, Old, Tries) ->
    case whereis(Name) of
        New when is_pid(New), New /= Old -> sys:get_state(New), restarted;
        _ -> timer:sleep(50), wait_for_new(Name, Old, Tries - 1)
    end.

%% Two copies for User through our backend: "old" archived ten years ago, "new" now.
store_aged_copies(User) ->
    Host = host(),
    Peer = jid:decode(<<"peer@", Host/binary, "/phone">>),
    Now = erlang:system_time(microsecond),
    Ages = [{<<"old">>, 10 * 365 * 86400 * 1000000}, {<<"new">>, 0}],
    [store(mod_mam_sql_grouped,
           [{xmlel, <<"message">>, [{<<"type">>, <<"chat">>}],
             [{xmlel, <<"body">>, [], [{xmlcdata, Body}]}]},
            Host, {User, Host}, chat, Peer, <<>>, recv, Now - Age], <<>>)
     || {Body, Age} <- Ages]
    ++ [mod_mam_sql_grouped:flush(Host)].

%% The texts of User's archive rows, oldest first (as strings: erl_call prints binaries
%% as #Bin<...>).
archived_texts(User) ->
    {selected, _, Rows} = ejabberd_sql:sql_query(
                            host(), [[<<"select txt from archive where username = ">>,
                                      quoted(User), <<" order by timestamp">>]]),
    [binary_to_list(Text) || [Text] <- Rows].

remove_archive(User) ->
    mod_mam_sql:remove_user(User, host()).

%% The set of users with offline messages: is User in it; pop User's spool through the
%% backend and count the SQL pops it made; or restart the set's owner.
offline_set(User, member) ->
    pi_im_user_set:member(offline_set(), User);
offline_set(User, pop) ->
    counting_calls({mod_offline_sql, pop_messages, 2},
                   fun() -> mod_offline_sql_known:pop_messages(User, host()) end);
offline_set(_User, restart) ->
    restart(offline_set()).

offline_set() ->
    gen_mod:get_module_proc(host(), mod_offline_sql_known_users).

%% The set of users with push registrations: is User in it; look up User's registrations
%% through the backend (as mod_push does for each message it archives) and count the SQL
%% lookups it made; or restart the set's owner.
push_set(User, member) ->
    pi_im_user_set:member(push_set(), User);
push_set(User, lookup) ->
    {{ok, Found}, Calls} =
        counting_calls({mod_push_sql, lookup_sessions, 2},
                       fun() -> mod_push_sql_known:lookup_sessions(User, host()) end),
    {length(Found), Calls};
push_set(_User, restart) ->
    restart(push_set()).

push_set() ->
    gen_mod:get_module_proc(host(), mod_push_sql_known_users).

%% Run(), and how many times it called the function MFA (the SQL backend's).
counting_calls(MFA, Run) ->
    erlang:trace_pattern(MFA, true, [call_count]),
    erlang:trace(self(), true, [call]),
    Result = Run(),
    erlang:trace(self(), false, [call]),
    {call_count, Calls} = erlang:trace_info(MFA, call_count),
    erlang:trace_pattern(MFA, false, [call_count]),
    {Result, Calls}.

%% ejabberd 24.12 (XEP-0424): a message that retracts an earlier one, by that one's origin-id,
%% deletes it from the archive. Through our backend: "keep" and "oops" stored (queued to the
%% writer), then a retraction of "oops"; the texts left, in order.
retraction(User) ->
    Host = host(),
    Peer = jid:decode(<<"peer@", Host/binary, "/phone">>),
    Now = erlang:system_time(microsecond),
    Message = fun(Body) ->
                  {xmlel, <<"message">>, [{<<"type">>, <<"chat">>}],
                   [{xmlel, <<"body">>, [], [{xmlcdata, Body}]}]}
              end,
    Args = fun(Body, N) -> [Message(Body), Host, {User, Host}, chat, Peer, <<>>, recv, Now + N] end,
    Stored = [apply(mod_mam_sql_grouped, store, Args(<<"keep">>, 1) ++ [<<"o-keep">>, false]),
              apply(mod_mam_sql_grouped, store, Args(<<"oops">>, 2) ++ [<<"o-oops">>, false]),
              apply(mod_mam_sql_grouped, store,
                    Args(<<"retracted">>, 3) ++ [<<"o-retract">>, {true, <<"o-oops">>}])],
    ok = mod_mam_sql_grouped:flush(Host),
    {Stored, archived_texts(User)}.

%% A store as this ejabberd's mod_mam calls it: store/8 (23.01), or store/10 (24.12) with
%% the message's origin-id and no retraction.
store(Mod, Args, OriginID) ->
    case origin_id_column() of
        true -> apply(Mod, store, Args ++ [OriginID, false]);
        false -> apply(Mod, store, Args)
    end.

origin_id_column() ->
    {module, mod_mam_sql} = code:ensure_loaded(mod_mam_sql),
    erlang:function_exported(mod_mam_sql, store, 10).
