%% Push registrations (XEP-0357) in ejabberd's SQL database, asked for only
%% when the user has some.
%%
%% mod_push looks up the recipient's push registrations for every message it
%% archives, to wake an app that is away. The answer is cached, but the first
%% message to each user after a start asks SQL, on the host's one SQLite
%% connection and behind the archive's commits: when thousands of members
%% start talking at once, each of those first messages waits its turn. This
%% backend keeps the set of users who have a registration (pi_im_user_set) and
%% answers "none" for everyone else without a query. The rows, and everything
%% else, are mod_push_sql's. Enabled by `mod_push: db_type: sql_known`
%% (ejabberd finds the backend as mod_push_<db_type>).
-module(mod_push_sql_known).

-behaviour(mod_push).

-export([init/2, store_session/6, lookup_session/4, lookup_session/3,
         lookup_sessions/3, lookup_sessions/2, lookup_sessions/1,
         delete_session/3, delete_old_sessions/2, export/1]).

init(Host, Opts) ->
    ok = mod_push_sql:init(Host, Opts),
    pi_im_user_set:start(set(Host), Host, <<"push_session">>).

store_session(LUser, LServer, TS, PushJID, Node, XData) ->
    pi_im_user_set:writing(
      set(LServer), LUser,
      fun() -> mod_push_sql:store_session(LUser, LServer, TS, PushJID, Node, XData) end).

%% The lookups a message or a session makes: None without a query for a user
%% outside the set (what mod_push_sql answers when it finds no row).
lookup_sessions(LUser, LServer) ->
    unless_unregistered(LUser, LServer, {ok, []},
                        fun() -> mod_push_sql:lookup_sessions(LUser, LServer) end).
lookup_sessions(LUser, LServer, PushJID) ->
    unless_unregistered(LUser, LServer, {ok, []},
                        fun() -> mod_push_sql:lookup_sessions(LUser, LServer, PushJID) end).
lookup_session(LUser, LServer, TS) ->
    unless_unregistered(LUser, LServer, {error, notfound},
                        fun() -> mod_push_sql:lookup_session(LUser, LServer, TS) end).
lookup_session(LUser, LServer, PushJID, Node) ->
    unless_unregistered(
      LUser, LServer, {error, notfound},
      fun() -> mod_push_sql:lookup_session(LUser, LServer, PushJID, Node) end).

%% A user keeps their place in the set when a registration goes (they may
%% have others): a member without rows costs one query, as before.
delete_session(LUser, LServer, TS) ->
    mod_push_sql:delete_session(LUser, LServer, TS).
delete_old_sessions(LServer, Time) ->
    mod_push_sql:delete_old_sessions(LServer, Time).
lookup_sessions(LServer) ->
    mod_push_sql:lookup_sessions(LServer).
export(Server) ->
    mod_push_sql:export(Server).

%% None for a user the set says has no registration; otherwise (a member, or
%% no set loaded yet) what Ask() finds in the database.
unless_unregistered(LUser, LServer, None, Ask) ->
    case pi_im_user_set:member(set(LServer), LUser) of
        false -> None;
        _ -> Ask()
    end.

set(Host) ->
    gen_mod:get_module_proc(Host, mod_push_sql_known_users).
