%% How long a browser's session waits to be resumed (XEP-0198): seconds, not
%% the minutes an app's gets.
%%
%% When a connection drops, ejabberd keeps the session `resume_timeout`
%% (mod_stream_mgmt) for the client to resume it: an app on a phone that
%% changed network comes back within that window and misses nothing. A
%% browser tab that was closed never comes back, and while its session waits
%% the member looks online to their contacts and messages queue in it. A tab
%% that is only reloaded resumes within seconds. So a session over WebSocket
%% or BOSH waits `resume_timeout` of this module instead; apps keep
%% mod_stream_mgmt's, and push clients mod_push_keepalive's (which runs
%% after this hook and only for them).
-module(mod_web_resume).

-behaviour(gen_mod).

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1,
         mod_doc/0]).
-export([c2s_session_pending/1]).
-ifdef(TEST).
-export([timeout_for/3]).
-endif.

start(Host, _Opts) ->
    ejabberd_hooks:add(c2s_session_pending, Host, ?MODULE, c2s_session_pending, 40).

stop(Host) ->
    ejabberd_hooks:delete(c2s_session_pending, Host, ?MODULE, c2s_session_pending, 40).

reload(_Host, _NewOpts, _OldOpts) -> ok.
depends(_Host, _Opts) -> [{mod_stream_mgmt, hard}].
mod_opt_type(resume_timeout) -> econf:timeout(second).
mod_options(_Host) -> [{resume_timeout, timer:seconds(30)}].
mod_doc() ->
    #{desc => <<"How long a WebSocket or BOSH session waits to be resumed.">>,
      opts => [{resume_timeout,
                #{value => "timeout()",
                  desc => <<"Instead of mod_stream_mgmt's resume_timeout, for "
                            "sessions of browsers.">>}}]}.

c2s_session_pending(#{lserver := Host} = State) ->
    Web = gen_mod:get_module_opt(Host, ?MODULE, resume_timeout),
    Transport = xmpp_stream_in:get_transport(State),
    case timeout_for(Transport, Web, mod_stream_mgmt:get_resume_timeout(State)) of
        keep -> State;
        Timeout -> mod_stream_mgmt:set_resume_timeout(State, Timeout)
    end.

%% Never longer than what the session has: a shorter mod_stream_mgmt
%% resume_timeout applies to browsers too.
timeout_for(Transport, Web, Current)
  when (Transport == websocket orelse Transport == http_bind), Web < Current ->
    Web;
timeout_for(_Transport, _Web, _Current) -> keep.
