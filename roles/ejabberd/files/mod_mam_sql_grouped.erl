%% Message archive (XEP-0313) in ejabberd's SQL database, with group commit.
%%
%% ejabberd 23.01 archives every one-to-one message twice (sender's and
%% recipient's copy) and runs each INSERT as its own SQLite transaction on
%% its one SQL connection: a commit (WAL append + fdatasync) and a round
%% trip to the driver's thread per copy. Here every store goes through one
%% writer process per host; the writer takes whatever stores have queued up
%% while the previous commit ran and writes them in ONE transaction, then
%% answers each caller. Callers still wait for their commit, so a message is
%% on disk when store/8 returns, as before: durability is unchanged. With one
%% store waiting, it is written exactly as mod_mam_sql writes it.
%%
%% Everything else (queries, preferences, removal, expiry) is mod_mam_sql's.
%% Enabled by `mod_mam: db_type: sql_grouped` (ejabberd finds the backend
%% as mod_mam_<db_type>).
-module(mod_mam_sql_grouped).

-behaviour(mod_mam).
-behaviour(gen_server).

%% mod_mam backend
-export([init/2, remove_user/2, remove_room/3, delete_old_messages/3,
         extended_fields/0, store/8, write_prefs/4, get_prefs/2, select/7,
         export/1, remove_from_archive/3, is_empty_for_user/2,
         is_empty_for_room/3, select_with_mucsub/6,
         delete_old_messages_batch/4, count_messages_to_delete/3]).
%% Observability: how many stores went into how many commits.
-export([stats/1]).
%% gen_server
-export([init/1, handle_call/3, handle_cast/2]).

%% A group is bounded so one commit cannot hold the SQL connection (and so
%% logins and roster reads) for long: 256 inserts take a few milliseconds.
-define(MAX_GROUP, 256).

-record(state, {host :: binary(), stores = 0 :: non_neg_integer(),
                commits = 0 :: non_neg_integer(),
                largest = 0 :: non_neg_integer()}).

%%%===================================================================
%%% mod_mam backend
%%%===================================================================
init(Host, Opts) ->
    ok = mod_mam_sql:init(Host, Opts),
    case gen_mod:start_child(?MODULE, Host, Opts) of
        {ok, _} -> ok;
        {error, {already_started, _}} -> ok;
        {error, already_present} ->
            %% Stopped earlier (module reload): start the kept child again.
            case supervisor:restart_child(ejabberd_gen_mod_sup, proc(Host)) of
                {ok, _} -> ok;
                {error, running} -> ok;
                Err -> Err
            end;
        Err -> Err
    end.

store(Pkt, LServer, US, Type, Peer, Nick, Dir, TS) ->
    Args = [Pkt, LServer, US, Type, Peer, Nick, Dir, TS],
    try gen_server:call(proc(LServer), {store, Args},
                        ejabberd_option:sql_query_timeout(LServer))
    catch
        exit:{noproc, _} ->
            %% Writer not running (host starting or stopping): write alone.
            store_one(Args);
        exit:{timeout, _} ->
            {error, timeout}
    end.

stats(Host) ->
    gen_server:call(proc(Host), stats).

remove_user(LUser, LServer) -> mod_mam_sql:remove_user(LUser, LServer).
remove_room(LServer, LName, LHost) ->
    mod_mam_sql:remove_room(LServer, LName, LHost).
extended_fields() -> mod_mam_sql:extended_fields().
write_prefs(LUser, LServer, Prefs, ServerHost) ->
    mod_mam_sql:write_prefs(LUser, LServer, Prefs, ServerHost).
get_prefs(LUser, LServer) -> mod_mam_sql:get_prefs(LUser, LServer).
select(LServer, JidRequestor, JidArchive, Query, RSM, MsgType, Flags) ->
    mod_mam_sql:select(LServer, JidRequestor, JidArchive, Query, RSM,
                       MsgType, Flags).
select_with_mucsub(LServer, JidRequestor, JidArchive, Query, RSM, Flags) ->
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
%%% The writer
%%%===================================================================
init([Host, _Opts]) ->
    {ok, #state{host = Host}}.

handle_call({store, Args}, From, #state{host = Host} = State) ->
    Group = [{From, Args} | queued_stores(?MAX_GROUP - 1)],
    Results = write(Host, [A || {_, A} <- Group]),
    lists:foreach(fun({{Caller, _}, Result}) ->
                          gen_server:reply(Caller, Result)
                  end, lists:zip(Group, Results)),
    N = length(Group),
    {noreply, State#state{stores = State#state.stores + N,
                          commits = State#state.commits + 1,
                          largest = max(N, State#state.largest)}};
handle_call(stats, _From, State) ->
    {reply, #{stores => State#state.stores, commits => State#state.commits,
              largest_group => State#state.largest}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast(_Msg, State) -> {noreply, State}.

%% The stores that arrived while the last commit ran, oldest first. They are
%% gen_server calls still in the mailbox; taking them here answers them
%% below exactly as handle_call would.
queued_stores(0) -> [];
queued_stores(Room) ->
    receive
        {'$gen_call', From, {store, Args}} ->
            [{From, Args} | queued_stores(Room - 1)]
    after 0 ->
        []
    end.

write(_Host, [Args]) ->
    [store_one(Args)];
write(Host, Group) ->
    %% Inside the transaction mod_mam_sql's queries run on the connection
    %% that holds it (ejabberd_sql nests them), so all commit together.
    case ejabberd_sql:sql_transaction(
           Host, fun() -> [store_one(A) || A <- Group] end) of
        {atomic, Results} ->
            Results;
        {aborted, Reason} ->
            %% A bad copy cannot abort the group (store_one answers for it);
            %% only BEGIN or COMMIT failing can, after ejabberd_sql's own
            %% retries. Each caller gets the error mod_mam_sql would give.
            logger:error("Archive group of ~B not committed: ~p",
                         [length(Group), Reason]),
            [{error, Reason} || _ <- Group]
    end.

%% One copy, as mod_mam_sql writes it. A failure is that caller's answer and
%% never reaches the SQL connection or the writer (it once was the caller's
%% own exception). Throws pass: ejabberd_sql restarts transactions by them.
store_one(Args) ->
    try apply(mod_mam_sql, store, Args)
    catch
        Class:Reason:Stack when Class == error; Class == exit ->
            logger:error("Archiving a message failed: ~ts",
                         [misc:format_exception(2, Class, Reason, Stack)]),
            {error, Reason}
    end.

proc(Host) ->
    gen_mod:get_module_proc(Host, ?MODULE).
