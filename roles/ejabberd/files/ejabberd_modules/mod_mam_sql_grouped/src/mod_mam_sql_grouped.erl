%% Message archive (XEP-0313) in ejabberd's SQLite database, with group commit.
%%
%% ejabberd (23.01 and 24.12) archives every one-to-one message twice (sender's and
%% recipient's copy) and runs each INSERT as its own SQLite transaction on
%% its one SQL connection: a commit (WAL append + fdatasync), a statement to
%% parse and two round trips to the driver's thread per copy. Here every
%% store goes through one writer process per host; the writer takes whatever
%% stores have queued up while the previous commit ran and writes them as
%% ONE multi-row INSERT (one statement, so one transaction). The rows are
%% the ones mod_mam_sql writes (Molecule compares them column by column),
%% built by the writer, off the message's path; a group the database refuses
%% is written again row by row.
%%
%% Whether a message waits for the disk is this module's option
%% `wait_for_disk` (it is also a gen_mod, listed under `modules:` only for
%% its options):
%%
%% - false (the default): nobody waits. Copies are handed to the writer and
%%   the message goes on; the writer commits what has queued at most every
%%   `commit_interval_ms` (option, 10 ms by default), so a copy reaches disk
%%   within about that after delivery. A power cut in that window can drop
%%   a delivered message from history (the clients have it); a clean stop
%%   writes every queued copy first (terminate/2), and history reads and
%%   user removal wait for the copies queued before them (they end the
%%   interval's wait early), so a reader sees every message delivered
%%   before it asked. mod_mam ignores what store answers (a failed write
%%   never held a message back), so waiting only ever bought that window.
%% - true: the recipient's session waits for the commit holding its copy
%%   before delivering. The sender's copy of a chat to a user of the same
%%   host still does not wait: the recipient's copy follows it through this
%%   host's one writer, which takes stores in mailbox order (on one node a
%%   message sent is in the mailbox before its sender goes on), so it is
%%   committed in the same group or an earlier one. A message reaches a
%%   recipient who keeps history only once both copies are on disk.
%%
%% mod_mam asks for a user's archive preferences on their first message after
%% a restart (and when its cache expires). Almost nobody has any, yet each
%% miss was an SQL query queued behind the archive's commits on the one SQL
%% connection: the first seconds of traffic after a restart waited on them.
%% The set of users who have a preferences row (pi_im_user_set, kept by
%% write_prefs and remove_user) answers "none" for anyone else without a
%% query.
%%
%% The module also sizes ejabberd's SQLite connection for the archive's
%% writes (options `sqlite_cache_mb`, `sqlite_checkpoint_pages`): every copy
%% lands on pages of the user-keyed indexes scattered over the file, which a
%% small cache reads back and a frequent checkpoint rewrites (decision 0007
%% in docs/decisions). Both are settings of the connection, not the file: if
%% ejabberd reconnects to the database they are SQLite's defaults again
%% until the next start or reload.
%%
%% When the disk is full SQLite refuses every group ("database or disk is
%% full"): the message was delivered, and its copies would be lost from
%% history. The writer holds them instead, in memory and in order, up to
%% HOLD_BYTES (the oldest are dropped, counted and logged, beyond that), and
%% tries the oldest again every HOLD_RETRY ms; once the disk has room it
%% writes them all, then takes new copies again. Held copies are not yet in
%% history (a read does not wait for them), and a stop while the disk is
%% still full loses them (logged with their number).
%%
%% The why and the measurements: docs/decisions/0005, 0006, 0007, 0009 and
%% 0028.
%%
%% ejabberd 24.12 calls store/10 (the message's origin-id, kept in the
%% archive's origin_id column, and whether it retracts an earlier message);
%% 23.01 calls store/8 and its archive has no such column. A retraction
%% deletes the retracted copy first: it waits for the queued copies (the one
%% it retracts may be among them) and is written by mod_mam_sql itself.
%%
%% Everything else (queries, preferences, removal, expiry) is mod_mam_sql's.
%% Enabled by `mod_mam: db_type: sql_grouped` (ejabberd finds the backend
%% as mod_mam_<db_type>) with `sql_type: sqlite`.
-module(mod_mam_sql_grouped).

-behaviour(mod_mam).
-behaviour(gen_mod).
-behaviour(gen_server).

%% mod_mam backend
-export([init/2, remove_user/2, remove_room/3, delete_old_messages/3,
         extended_fields/0, store/8, store/10, write_prefs/4, get_prefs/2, select/7,
         export/1, remove_from_archive/3, is_empty_for_user/2,
         is_empty_for_room/3, select_with_mucsub/6,
         delete_old_messages_batch/4, count_messages_to_delete/3]).
%% How many stores went into how many commits; waiting for the queued ones.
-export([stats/1, flush/1]).
%% gen_mod: the module's one option
-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1,
         mod_doc/0]).
%% gen_server
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-ifdef(TEST).
%% For the EUnit tests (test/): the parts that need no running ejabberd.
-export([ahead_of_recipient_copy/4, queued_stores/1, row/3, literal/1,
         held/4, disk_full/1]).
-endif.

%% A group is bounded so one commit cannot hold the SQL connection (and so
%% logins and roster reads) for long: 256 rows take a few milliseconds.
-define(MAX_GROUP, 256).
%% Copies held while the disk is full (top of the module): about a minute of
%% the benchmark's 1,000 messages a second, days of a family's chat.
-define(HOLD_BYTES, 64 * 1024 * 1024).
-define(HOLD_RETRY, 5000).

-record(state, {host :: binary(), stores = 0 :: non_neg_integer(),
                commits = 0 :: non_neg_integer(),
                largest = 0 :: non_neg_integer(),
                unwaited = 0 :: non_neg_integer(),
                %% erlang:monotonic_time(millisecond), which may be negative
                last_commit :: integer(),
                %% Rows refused for a full disk, oldest first (top of the module).
                held = queue:new() :: queue:queue(binary()),
                held_bytes = 0 :: non_neg_integer(),
                dropped = 0 :: non_neg_integer()}).

%%%===================================================================
%%% mod_mam backend
%%%===================================================================
init(Host, Opts) ->
    case ejabberd_option:sql_type(Host) of
        sqlite -> start_writer(Host, Opts);
        Other -> {error, {sql_type_not_supported, Other}}
    end.

start_writer(Host, Opts) ->
    ok = mod_mam_sql:init(Host, Opts),
    %% Without its set (it failed to start) every lookup asks SQL.
    pi_im_user_set:start(prefs_set(Host), Host, <<"archive_prefs">>),
    pi_im_user_set:ensure_child(
      #{id => proc(Host), restart => transient, shutdown => 30000,
        start => {gen_server, start_link,
                  [{local, proc(Host)}, ?MODULE, [Host, Opts],
                   ejabberd_config:fsm_limit_opts([])]}}).

%% ejabberd 23.01.
store(Pkt, LServer, US, Type, Peer, Nick, Dir, TS) ->
    store_copy([Pkt, LServer, US, Type, Peer, Nick, Dir, TS]).

%% ejabberd 24.12.
store(Pkt, LServer, US, Type, Peer, Nick, Dir, TS, OriginID, false) ->
    store_copy([Pkt, LServer, US, Type, Peer, Nick, Dir, TS, OriginID, false]);
store(Pkt, LServer, US, Type, Peer, Nick, Dir, TS, OriginID, {true, _} = Retract) ->
    flush(LServer),
    store_one([Pkt, LServer, US, Type, Peer, Nick, Dir, TS, OriginID, Retract]).

%% Args: store/8's or store/10's arguments.
store_copy([_Pkt, LServer, _US, Type, Peer, _Nick, Dir | _] = Args) ->
    case whereis(proc(LServer)) of
        undefined ->
            %% Writer not running (host starting or stopping): write alone.
            store_one(Args);
        Writer ->
            %% The writer builds the row, off the sender's and the
            %% recipient's sessions (decision 0005). The one mod_mam option
            %% a row needs is read here, while mod_mam surely runs: the
            %% writer may build the row as ejabberd stops, after mod_mam has.
            Copy = {mod_mam_opt:compress_xml(LServer), Args},
            case wait_for_disk(LServer)
                andalso not ahead_of_recipient_copy(LServer, Type, Peer, Dir) of
                true -> call_writer(LServer, {store, Copy},
                                    fun() -> store_one(Args) end);
                false -> gen_server:cast(Writer, {store, Copy})
            end
    end.

wait_for_disk(Host) ->
    case gen_mod:is_loaded(Host, ?MODULE) of
        true -> gen_mod:get_module_opt(Host, ?MODULE, wait_for_disk);
        false -> proplists:get_value(wait_for_disk, mod_options(Host))
    end.

%% The sender's copy of a chat to a user of this host: the recipient's copy
%% follows it through the same writer (see the top of the module).
ahead_of_recipient_copy(LServer, chat, Peer, send) ->
    element(2, jid:tolower(Peer)) == LServer;
ahead_of_recipient_copy(_LServer, _Type, _Peer, _Dir) ->
    false.

%% A call to Host's writer, bounded like an SQL query; Gone() answers when
%% the writer is not running (host starting or stopping).
call_writer(Host, Request, Gone) ->
    try gen_server:call(proc(Host), Request,
                        ejabberd_option:sql_query_timeout(Host))
    catch
        exit:{noproc, _} -> Gone();
        exit:{timeout, _} -> {error, timeout}
    end.

stats(Host) ->
    gen_server:call(proc(Host), stats).

%% Returns once every copy handed to the writer before the call is committed
%% (the writer handles its mailbox in order). `ok` also when no writer runs:
%% then every store wrote alone.
flush(Host) ->
    call_writer(Host, flush, fun() -> ok end).

remove_user(LUser, LServer) ->
    %% A copy still queued would be written after the delete.
    flush(LServer),
    pi_im_user_set:removing(prefs_set(LServer), LUser,
                            fun() -> mod_mam_sql:remove_user(LUser, LServer) end).
remove_room(LServer, LName, LHost) ->
    mod_mam_sql:remove_room(LServer, LName, LHost).
extended_fields() -> mod_mam_sql:extended_fields().
write_prefs(LUser, LServer, Prefs, ServerHost) ->
    pi_im_user_set:writing(
      prefs_set(LServer), LUser,
      fun() -> mod_mam_sql:write_prefs(LUser, LServer, Prefs, ServerHost) end).

%% `error` is what mod_mam_sql answers for a user without a row.
get_prefs(LUser, LServer) ->
    case pi_im_user_set:member(prefs_set(LServer), LUser) of
        false -> error;
        _ -> mod_mam_sql:get_prefs(LUser, LServer)
    end.
%% History read after a message was delivered holds it: the read waits for the
%% copies queued before it.
select(LServer, JidRequestor, JidArchive, Query, RSM, MsgType, Flags) ->
    flush(LServer),
    mod_mam_sql:select(LServer, JidRequestor, JidArchive, Query, RSM,
                       MsgType, Flags).
select_with_mucsub(LServer, JidRequestor, JidArchive, Query, RSM, Flags) ->
    flush(LServer),
    mod_mam_sql:select_with_mucsub(LServer, JidRequestor, JidArchive, Query,
                                   RSM, Flags).
export(Server) -> mod_mam_sql:export(Server).
remove_from_archive(LUser, LServer, With) ->
    mod_mam_sql:remove_from_archive(LUser, LServer, With).
is_empty_for_user(LUser, LServer) ->
    mod_mam_sql:is_empty_for_user(LUser, LServer).
is_empty_for_room(LServer, LName, LHost) ->
    mod_mam_sql:is_empty_for_room(LServer, LName, LHost).
delete_old_messages_batch(ServerHost, TimeStamp, Type, Batch) ->
    mod_mam_sql:delete_old_messages_batch(ServerHost, TimeStamp, Type, Batch).
count_messages_to_delete(ServerHost, TimeStamp, Type) ->
    mod_mam_sql:count_messages_to_delete(ServerHost, TimeStamp, Type).

%% mod_mam asks a backend that is not `sql` to expire messages for all hosts
%% at once (ServerHost = global); mod_mam_sql works per host.
delete_old_messages(global, TimeStamp, Type) ->
    Results = [mod_mam_sql:delete_old_messages(Host, TimeStamp, Type)
               || Host <- ejabberd_option:hosts(),
                  gen_mod:is_loaded(Host, mod_mam)],
    case [R || R <- Results, R /= ok] of
        [] -> ok;
        [NotOk | _] -> NotOk
    end;
delete_old_messages(ServerHost, TimeStamp, Type) ->
    mod_mam_sql:delete_old_messages(ServerHost, TimeStamp, Type).

%%%===================================================================
%%% gen_mod: `modules: mod_mam_sql_grouped: {wait_for_disk: Bool, ...}`.
%%% The writer belongs to the backend (mod_mam starts it), so there is
%%% nothing else to start or stop; a store reads `wait_for_disk` on every
%%% copy, and a config reload sets the connection's options again, so both
%%% take effect at once. The options belong to the connection, not to the
%%% writer: ejabberd starts its SQL connections before any module (host_up
%%% hooks at 20 and 40), so start/2 finds the connection there.
%%%===================================================================
start(Host, Opts) -> tune_connection(Host, Opts).
stop(_Host) -> ok.
reload(Host, NewOpts, _OldOpts) -> tune_connection(Host, NewOpts).
depends(_Host, _Opts) -> [].
mod_opt_type(wait_for_disk) -> econf:bool();
mod_opt_type(commit_interval_ms) -> econf:non_neg_int();
mod_opt_type(sqlite_cache_mb) -> econf:pos_int();
mod_opt_type(sqlite_checkpoint_pages) -> econf:pos_int().
mod_options(_Host) ->
    [{wait_for_disk, false}, {commit_interval_ms, 10}, {sqlite_cache_mb, 32},
     {sqlite_checkpoint_pages, 10000}].
mod_doc() ->
    #{desc => <<"Options of the appliance's group-commit archive backend.">>,
      opts => [{wait_for_disk,
                #{value => "true | false",
                  desc => <<"Whether a message waits until its archive copies "
                            "are on disk before delivery (default false).">>}},
               {commit_interval_ms,
                #{value => "Milliseconds",
                  desc => <<"When nobody waits: the least time between two "
                            "commits of the archive, and so the most history a "
                            "power cut can lose (default 10).">>}},
               {sqlite_cache_mb,
                #{value => "Megabytes",
                  desc => <<"Page cache of ejabberd's SQLite connection "
                            "(default 32).">>}},
               {sqlite_checkpoint_pages,
                #{value => "Pages",
                  desc => <<"Pages of write-ahead log between two automatic "
                            "checkpoints of ejabberd's SQLite connection "
                            "(default 10000).">>}}]}.

%% Sets the SQLite connection's page cache and checkpoint interval (top of
%% the module). A failure is logged and leaves the setting as it was.
tune_connection(Host, Opts) ->
    case ejabberd_option:sql_type(Host) of
        sqlite -> set_pragmas(Host, Opts);
        _ -> ok
    end.

set_pragmas(Host, Opts) ->
    %% A negative cache_size is in KiB, a positive one in pages.
    Pragmas = [{<<"cache_size">>, -1024 * gen_mod:get_opt(sqlite_cache_mb, Opts)},
               {<<"wal_autocheckpoint">>,
                gen_mod:get_opt(sqlite_checkpoint_pages, Opts)}],
    lists:foreach(
      fun({Name, Value}) ->
              Pragma = [<<"PRAGMA ">>, Name, $=, integer_to_binary(Value)],
              case ejabberd_sql:sql_query(Host, [Pragma]) of
                  {error, Reason} ->
                      logger:warning("SQLite ~ts not set (~p): left as it "
                                     "was", [Name, Reason]);
                  _ -> ok
              end
      end, Pragmas).

%%%===================================================================
%%% The writer
%%%===================================================================
init([Host, _Opts]) ->
    %% A stop (supervisor shutdown) reaches terminate/2, which writes what is
    %% still queued: nobody waited for those copies.
    process_flag(trap_exit, true),
    {ok, #state{host = Host, last_commit = erlang:monotonic_time(millisecond)}}.

handle_call({store, Copy}, From, State) ->
    {noreply, commit([{From, Copy} | queued_stores(?MAX_GROUP - 1)], State)};
handle_call(flush, _From, State) ->
    {reply, ok, State};
handle_call(stats, _From, State) ->
    {reply, #{stores => State#state.stores, commits => State#state.commits,
              largest_group => State#state.largest,
              unwaited => State#state.unwaited,
              held => queue:len(State#state.held),
              dropped => State#state.dropped}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast({store, Copy}, State) ->
    Flushes = hold_until_due(State),
    %% Everything queued by now, in groups: the interval bounds how often the
    %% writer commits, never how much.
    Written = write_queued(commit([{nobody, Copy} | queued_stores(?MAX_GROUP - 1)], State)),
    lists:foreach(fun(From) -> gen_server:reply(From, ok) end, Flushes),
    {noreply, Written};
handle_cast(_Msg, State) -> {noreply, State}.

handle_info(retry_held, State) -> {noreply, retry_held(State)};
handle_info(_Info, State) -> {noreply, State}.

terminate(_Reason, State) ->
    #state{held = Held, dropped = Dropped} = write_held(write_queued(State)),
    case queue:len(Held) + Dropped of
        0 -> ok;
        Lost -> logger:error("~B archive copies lost: the disk was still full "
                             "when ejabberd stopped", [Lost])
    end.

write_queued(State) ->
    case queued_stores(?MAX_GROUP) of
        [] -> State;
        Group -> write_queued(commit(Group, State))
    end.

%% A copy nobody waits for: let more queue up behind it, unless a message
%% might be waiting on this commit (wait_for_disk). A flush (a history read,
%% a user's removal) ends the wait: it is answered once everything queued is
%% written. Returns the flushes taken.
hold_until_due(#state{host = Host, last_commit = Last}) ->
    Due = Last + commit_interval(Host) - erlang:monotonic_time(millisecond),
    case Due > 0 andalso not wait_for_disk(Host) of
        true ->
            receive
                {'$gen_call', From, flush} -> [From]
            after Due -> []
            end;
        false -> []
    end.

commit_interval(Host) ->
    case gen_mod:is_loaded(Host, ?MODULE) of
        true -> gen_mod:get_module_opt(Host, ?MODULE, commit_interval_ms);
        false -> proplists:get_value(commit_interval_ms, mod_options(Host))
    end.

%% A group of stores (a first one and those queued behind it) as one
%% commit; then answer the callers that wait. A copy whose row cannot be
%% built is that copy's {error, Reason} (logged) and left out of the group.
commit(Group, State0) ->
    NewSchema = ejabberd_sql:use_new_schema(),
    Rows = [answered(fun() -> row(NewSchema, CompressXML, Args) end)
            || {_, {CompressXML, Args}} <- Group],
    {Results, State} = write(columns(NewSchema, origin_id_column()), Rows, State0),
    lists:foreach(fun({{Caller, _}, Result}) -> reply(Caller, Result) end,
                  lists:zip(Group, Results)),
    N = length(Group),
    State#state{last_commit = erlang:monotonic_time(millisecond),
                stores = State#state.stores + N,
                commits = State#state.commits + 1,
                largest = max(N, State#state.largest),
                unwaited = State#state.unwaited
                    + length([nobody || {nobody, _} <- Group])}.

reply(nobody, _Result) -> ok;
reply(Caller, Result) -> gen_server:reply(Caller, Result).

%% The stores that arrived while the last commit ran, in mailbox order (which
%% keeps a sender's copy ahead of its recipient's). They are gen_server calls
%% and casts still in the mailbox; taking them here handles them as
%% handle_call and handle_cast would.
queued_stores(0) -> [];
queued_stores(Room) ->
    receive
        {'$gen_call', From, {store, Copy}} ->
            [{From, Copy} | queued_stores(Room - 1)];
        {'$gen_cast', {store, Copy}} ->
            [{nobody, Copy} | queued_stores(Room - 1)]
    after 0 ->
        []
    end.

%% Rows are {ok, Row} or the error building it met; the answer is one
%% result per copy, in order: ok, or why that copy is not archived (yet).
%% While copies are held for a full disk, new ones queue behind them untried.
write(Columns, Rows, #state{host = Host} = State) ->
    EachBuilt = fun(Write) ->
                        [case R of {ok, Row} -> Write(Row); Error -> Error end
                         || R <- Rows]
                end,
    Built = [Row || {ok, Row} <- Rows],
    case queue:is_empty(State#state.held) andalso insert(Host, Columns, Built) of
        false ->
            {EachBuilt(fun(_Row) -> {error, disk_full} end), hold(Built, State)};
        ok ->
            {EachBuilt(fun(_Row) -> ok end), State};
        {error, Reason} ->
            case disk_full(Reason) of
                true ->
                    logger:error("The disk is full: archive copies are held in "
                                 "memory (up to ~B MB) until it has room",
                                 [?HOLD_BYTES div (1024 * 1024)]),
                    erlang:send_after(?HOLD_RETRY, self(), retry_held),
                    {EachBuilt(fun(_Row) -> {error, disk_full} end),
                     hold(Built, State)};
                false ->
                    %% One statement: nothing of it was written. Write each
                    %% row alone, so one the database refuses costs only
                    %% that copy.
                    logger:error("Archive group of ~B refused (~p): writing "
                                 "each copy alone", [length(Rows), Reason]),
                    {EachBuilt(fun(Row) -> insert(Host, Columns, [Row]) end),
                     State}
            end
    end.

hold(Rows, #state{held = Held, held_bytes = Bytes, dropped = Dropped} = State) ->
    {Held1, Bytes1, Dropped1} = held(Rows, Held, Bytes, ?HOLD_BYTES),
    State#state{held = Held1, held_bytes = Bytes1, dropped = Dropped + Dropped1}.

%% Rows appended to the held ones; beyond Limit bytes the oldest go. Answers
%% the held rows, their bytes and how many were dropped.
held(Rows, Held, Bytes, Limit) ->
    Added = lists:foldl(fun(Row, Q) -> queue:in(Row, Q) end, Held, Rows),
    drop_oldest(Added, Bytes + lists:sum([byte_size(R) || R <- Rows]), Limit, 0).

drop_oldest(Held, Bytes, Limit, Dropped) when Bytes > Limit ->
    {{value, Row}, Rest} = queue:out(Held),
    drop_oldest(Rest, Bytes - byte_size(Row), Limit, Dropped + 1);
drop_oldest(Held, Bytes, _Limit, Dropped) ->
    {Held, Bytes, Dropped}.

%% SQLite's SQLITE_FULL, as ejabberd's SQL layer answers it.
disk_full(Reason) ->
    string:find(io_lib:format("~0p", [Reason]), "disk is full") /= nomatch.

%% The held copies, tried again: the oldest alone first (while the disk is
%% still full each try costs one refused row, which ejabberd logs whole),
%% then the rest in groups.
retry_held(#state{host = Host} = State) ->
    Tried = write_held(State),
    case queue:is_empty(Tried#state.held) of
        true ->
            Dropped = Tried#state.dropped,
            Written = queue:len(State#state.held) - (Dropped - State#state.dropped),
            logger:warning("The disk has room again: ~B held archive copies "
                          "written, ~B dropped while it was full",
                          [Written, Dropped]),
            %% A transaction the full disk refused restarts ejabberd's SQL
            %% connection, which forgets the connection's settings.
            gen_mod:is_loaded(Host, ?MODULE) andalso
                tune_connection(Host, gen_mod:get_module_opts(Host, ?MODULE)),
            Tried#state{dropped = 0};
        false ->
            logger:warning("The disk is still full: ~B archive copies held, "
                           "~B dropped", [queue:len(Tried#state.held),
                                          Tried#state.dropped]),
            erlang:send_after(?HOLD_RETRY, self(), retry_held),
            Tried
    end.

write_held(#state{host = Host, held = Held} = State) ->
    Columns = columns(ejabberd_sql:use_new_schema(), origin_id_column()),
    case queue:out(Held) of
        {empty, _} ->
            State;
        {{value, Oldest}, Rest} ->
            Without = State#state{held = Rest,
                                  held_bytes = State#state.held_bytes - byte_size(Oldest)},
            case insert(Host, Columns, [Oldest]) of
                ok ->
                    write_held_groups(Columns, Without);
                {error, Reason} ->
                    case disk_full(Reason) of
                        true -> State;
                        %% Refused whatever the disk (logged by ejabberd): lost,
                        %% as such a copy always was.
                        false -> write_held(Without#state{dropped = State#state.dropped + 1})
                    end
            end
    end.

write_held_groups(Columns, #state{host = Host, held = Held} = State) ->
    {Group, Rest} = queue:split(min(?MAX_GROUP, queue:len(Held)), Held),
    Rows = queue:to_list(Group),
    case Rows /= [] andalso insert(Host, Columns, Rows) of
        false ->
            State;
        ok ->
            Bytes = lists:sum([byte_size(R) || R <- Rows]),
            write_held_groups(Columns, State#state{
                held = Rest, held_bytes = State#state.held_bytes - Bytes});
        {error, _} ->
            %% Full again, or a row the database refuses: one by one, as a
            %% refused group is; the oldest stays if the disk is full again.
            write_held(State)
    end.

%% The archive's columns a row fills, in row/3's order.
columns(NewSchema, OriginID) ->
    lists:join(<<", ">>,
               [<<"username">>] ++ [<<"server_host">> || NewSchema]
               ++ [<<"timestamp">>, <<"peer">>, <<"bare_peer">>, <<"xml">>, <<"txt">>,
                   <<"kind">>, <<"nick">>]
               ++ [<<"origin_id">> || OriginID]).

%% The archive has an origin_id column where mod_mam_sql writes one (24.12): the
%% copies a node stores all come through the same mod_mam, so all rows have it.
origin_id_column() ->
    erlang:function_exported(mod_mam_sql, store, 10).

insert(_Host, _Columns, []) ->
    ok;
insert(Host, Columns, Rows) ->
    Query = [<<"INSERT INTO archive (">>, Columns, <<") VALUES ">>,
             lists:join($,, Rows)],
    case ejabberd_sql:sql_query(Host, [Query]) of
        {updated, _} -> ok;
        {error, _} = Error -> Error;
        Other -> {error, Other}
    end.

%% A copy's row as mod_mam_sql:store/8 (23.01) or store/10 (24.12) fills it, as
%% an SQL literal tuple.
row(NewSchema, CompressXML, [Pkt, LServer, {LUser, LHost}, Type, Peer, Nick, _Dir, TS | Rest]) ->
    LPeer = jid:encode(jid:tolower(Peer)),
    Owner = case Type of
                chat -> LUser;
                groupchat -> jid:encode({LUser, LHost, <<>>})
            end,
    XML = case CompressXML of
              true ->
                  xml_compress:encode(Pkt, jid:encode({LUser, LHost, <<>>}), LPeer);
              false ->
                  fxml:element_to_binary(Pkt)
          end,
    Texts = [Owner]
        ++ [LServer || NewSchema]
        ++ [TS,
            LPeer,
            jid:encode(jid:tolower(jid:remove_resource(Peer))),
            XML,
            fxml:get_subtag_cdata(Pkt, <<"body">>),
            misc:atom_to_binary(Type),
            Nick]
        ++ [OriginID || [OriginID, _Retract] <- [Rest]],
    {ok, iolist_to_binary([$(, lists:join($,, [literal(T) || T <- Texts]), $)])}.

%% What ejabberd_sql:to_string_literal(sqlite, S) makes (quotes doubled), by
%% a BIF instead of a byte-by-byte comprehension, which was most of a row's
%% cost (EUnit checks the two agree).
literal(N) when is_integer(N) -> integer_to_binary(N);
literal(S) when is_binary(S) ->
    [$', binary:replace(S, <<"'">>, <<"''">>, [global]), $'].

%% One copy, by mod_mam_sql itself (no writer).
store_one(Args) ->
    answered(fun() -> apply(mod_mam_sql, store, Args) end).

%% A copy that fails (building its row, or mod_mam_sql writing it) is that
%% copy's {error, Reason}, logged.
answered(Fun) ->
    try Fun()
    catch
        Class:Reason:Stack when Class == error; Class == exit ->
            logger:error("Archiving a message failed: ~ts",
                         [misc:format_exception(2, Class, Reason, Stack)]),
            {error, Reason}
    end.

proc(Host) ->
    gen_mod:get_module_proc(Host, ?MODULE).

%% The set of users who have archive preferences (pi_im_user_set).
prefs_set(Host) ->
    gen_mod:get_module_proc(Host, mod_mam_sql_grouped_prefs).
