%% Offline messages in ejabberd's SQL database, asked for only when the user
%% has some.
%%
%% ejabberd 23.01 pops a user's offline messages at every login: a
%% transaction of four statements (BEGIN, SELECT, DELETE, COMMIT) on the
%% host's one SQLite connection, behind every other login's queries, for a
%% spool that is almost always empty. This backend keeps the set of users
%% who have spooled messages (pi_im_user_set) and answers "none" for
%% everyone else without a query. The rows, and everything else, are
%% mod_offline_sql's. Enabled by `mod_offline: db_type: sql_known`
%% (ejabberd finds the backend as mod_offline_<db_type>).
-module(mod_offline_sql_known).

-behaviour(mod_offline).

-export([init/2, store_message/1, pop_messages/2, remove_expired_messages/1,
         remove_old_messages/2, remove_user/2, read_message_headers/2,
         read_message/3, remove_message/3, read_all_messages/2,
         remove_all_messages/2, count_messages/2, import/1, export/1,
         remove_old_messages_batch/3]).

init(Host, Opts) ->
    ok = mod_offline_sql:init(Host, Opts),
    pi_im_user_set:start(set(Host), Host, <<"spool">>).

%% A message's `us` is #offline_msg's first field (mod_offline.hrl needs
%% xmpp's headers, which Debian does not ship).
store_message(Msg) ->
    {LUser, LServer} = element(2, Msg),
    pi_im_user_set:writing(set(LServer), LUser,
                           fun() -> mod_offline_sql:store_message(Msg) end).

%% Out of the set before the rows are read: a message stored meanwhile puts
%% its user back (see pi_im_user_set:writing/3), so it waits for the next pop.
%% A pop that failed took nothing: the user goes back in.
pop_messages(LUser, LServer) ->
    Set = set(LServer),
    case pi_im_user_set:member(Set, LUser) of
        false -> {ok, []};
        true ->
            pi_im_user_set:delete(Set, LUser),
            case mod_offline_sql:pop_messages(LUser, LServer) of
                {ok, _} = Popped -> Popped;
                Error ->
                    pi_im_user_set:add(Set, LUser),
                    Error
            end;
        unknown ->
            mod_offline_sql:pop_messages(LUser, LServer)
    end.

count_messages(LUser, LServer) ->
    case pi_im_user_set:member(set(LServer), LUser) of
        false -> {cache, 0};
        _ -> mod_offline_sql:count_messages(LUser, LServer)
    end.

remove_user(LUser, LServer) ->
    pi_im_user_set:removing(set(LServer), LUser,
                            fun() -> mod_offline_sql:remove_user(LUser, LServer) end).

remove_all_messages(LUser, LServer) ->
    pi_im_user_set:removing(
      set(LServer), LUser,
      fun() -> mod_offline_sql:remove_all_messages(LUser, LServer) end).

%% The rest leaves the set as it is: a user whose rows another way removed
%% (one read, expiry) costs one query at their next login.
remove_expired_messages(LServer) ->
    mod_offline_sql:remove_expired_messages(LServer).
remove_old_messages(Days, LServer) ->
    mod_offline_sql:remove_old_messages(Days, LServer).
remove_old_messages_batch(LServer, Days, Batch) ->
    mod_offline_sql:remove_old_messages_batch(LServer, Days, Batch).
read_message_headers(LUser, LServer) ->
    mod_offline_sql:read_message_headers(LUser, LServer).
read_message(LUser, LServer, Seq) ->
    mod_offline_sql:read_message(LUser, LServer, Seq).
remove_message(LUser, LServer, Seq) ->
    mod_offline_sql:remove_message(LUser, LServer, Seq).
read_all_messages(LUser, LServer) ->
    mod_offline_sql:read_all_messages(LUser, LServer).
import(Msg) ->
    {LUser, LServer} = element(2, Msg),
    pi_im_user_set:writing(set(LServer), LUser,
                           fun() -> mod_offline_sql:import(Msg) end).
export(Server) ->
    mod_offline_sql:export(Server).

set(Host) ->
    gen_mod:get_module_proc(Host, mod_offline_sql_known_users).
