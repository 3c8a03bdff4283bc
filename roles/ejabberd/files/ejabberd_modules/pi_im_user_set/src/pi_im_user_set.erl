%% The users of one host who have a row in one of ejabberd's SQL tables, kept
%% in memory so that everyone else is answered "nothing" without a query.
%%
%% ejabberd asks SQL at every login (or first message after a restart) for
%% things almost nobody has: offline messages, archive preferences. Each ask
%% is a round trip on the host's one SQLite connection, queued behind
%% whatever else it is doing. A backend that keeps one of these sets asks
%% SQL only for members.
%%
%% The set may hold users who no longer have rows (a member costs one query,
%% as before); it must never miss one who has: backends add a user before
%% writing the row (and again after, see add/2) and delete one only after
%% the rows are gone. Each set has an owner process of its own under
%% ejabberd's module supervisor, which loads it when it starts; while no set
%% exists (still loading, or its owner restarting) member/2 answers `unknown`
%% and the backend asks SQL.
-module(pi_im_user_set).

-behaviour(gen_server).

-export([start/3, member/2, writing/3, removing/3, add/2, delete/2,
         ensure_child/1]).
%% gen_server
-export([init/1, handle_call/3, handle_cast/2]).

%% Start the owner of the set Name: the users of Host with a row in Table
%% (its `username` column), read on Host's SQL connection.
-spec start(atom(), binary(), binary()) -> ok | {error, term()}.
start(Name, Host, Table) ->
    Where = case ejabberd_sql:use_new_schema() of
                true -> [<<" where server_host = ">>,
                         ejabberd_sql:to_string_literal(
                           ejabberd_option:sql_type(Host), Host)];
                false -> []
            end,
    Query = [<<"select distinct username from ">>, Table | Where],
    case ensure_child(#{id => Name, restart => transient,
                        start => {gen_server, start_link,
                                  [{local, Name}, ?MODULE, {Name, Host, Query},
                                   []]}}) of
        ok -> ok;
        Error ->
            logger:warning("~s not started (~p): every lookup asks the "
                           "database", [Name, Error]),
            Error
    end.

%% Start a child of ejabberd's module supervisor; `ok` if it runs already,
%% and a kept child that stopped (a module reload) is started again.
-spec ensure_child(supervisor:child_spec()) -> ok | {error, term()}.
ensure_child(#{id := Id} = Spec) ->
    case supervisor:start_child(ejabberd_gen_mod_sup, Spec) of
        {ok, _} -> ok;
        {error, {already_started, _}} -> ok;
        {error, already_present} ->
            case supervisor:restart_child(ejabberd_gen_mod_sup, Id) of
                {ok, _} -> ok;
                {error, running} -> ok;
                Err -> Err
            end;
        Err -> Err
    end.

init({Name, Host, Query}) ->
    load(Name, Host, Query),
    {ok, Name}.

handle_call(_Request, _From, Name) -> {reply, {error, badarg}, Name}.
handle_cast(_Msg, Name) -> {noreply, Name}.

%% Built under another name and renamed, so the set is complete when it
%% appears.
load(Name, Host, Query) ->
    case ejabberd_sql:sql_query(Host, [Query]) of
        {selected, _, Rows} ->
            Loading = ets:new(list_to_atom(atom_to_list(Name) ++ "_loading"),
                              [set, public, named_table,
                               {read_concurrency, true}]),
            ets:insert(Loading, [{User} || [User] <- Rows]),
            ets:rename(Loading, Name),
            ok;
        Error ->
            logger:warning("~s not loaded (~p): every lookup asks the "
                           "database", [Name, Error]),
            {error, Error}
    end.

%% true | false | unknown (no set: ask SQL).
-spec member(atom(), binary()) -> boolean() | unknown.
member(Name, LUser) ->
    try ets:member(Name, LUser)
    catch error:badarg -> unknown
    end.

%% Write LUser's rows with Write, keeping the rule above: the user is in the
%% set before the rows are written, and again once they are (a delete/2 that
%% ran between the two, a reader that took the rows, cannot hide a row
%% written after its read). Write's result is returned.
-spec writing(atom(), binary(), fun(() -> T)) -> T.
writing(Name, LUser, Write) ->
    add(Name, LUser),
    Result = Write(),
    add(Name, LUser),
    Result.

%% Remove LUser's rows with Remove, then the user from the set.
-spec removing(atom(), binary(), fun(() -> T)) -> T.
removing(Name, LUser, Remove) ->
    Result = Remove(),
    delete(Name, LUser),
    Result.

-spec add(atom(), binary()) -> ok.
add(Name, LUser) ->
    catch ets:insert(Name, {LUser}),
    ok.

-spec delete(atom(), binary()) -> ok.
delete(Name, LUser) ->
    catch ets:delete(Name, LUser),
    ok.
