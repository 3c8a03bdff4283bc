%% A receive buffer for ejabberd's STUN/TURN listener that holds more than a
%% dozen packets.
%%
%% ejabberd opens its UDP listeners without a buffer size, and Erlang asks
%% the kernel for 8 KB (16 KB once doubled): one socket takes every packet
%% of every relayed call, and a burst of more than about a dozen arriving
%% while the listener is busy is dropped by the kernel (seen as whole calls
%% going silent past six or so at once). Once ejabberd has started, this
%% module gives that socket `receive_buffer` bytes (the kernel caps it at
%% net.core.rmem_max, 212992 by default).
-module(mod_turn_buffer).

-behaviour(gen_mod).

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1,
         mod_doc/0]).
-export([ejabberd_started/0]).
-ifdef(TEST).
-export([is_listener/3]).
-endif.

%% The hook is global, the sockets too: the first host's option applies.
start(_Host, Opts) ->
    ejabberd_hooks:add(ejabberd_started, ?MODULE, ejabberd_started, 50),
    %% Loaded into a running server (a configuration reload): its listeners
    %% are up already. At boot there are none yet, and the hook does it.
    apply_buffer(gen_mod:get_opt(receive_buffer, Opts)).

stop(_Host) ->
    ejabberd_hooks:delete(ejabberd_started, ?MODULE, ejabberd_started, 50).

reload(_Host, NewOpts, _OldOpts) ->
    apply_buffer(gen_mod:get_opt(receive_buffer, NewOpts)).

depends(_Host, _Opts) -> [].
mod_opt_type(receive_buffer) -> econf:pos_int().
mod_options(_Host) -> [{receive_buffer, 212992}].
mod_doc() ->
    #{desc => <<"The receive buffer of the STUN/TURN listeners' UDP sockets.">>,
      opts => [{receive_buffer,
                #{value => "pos_integer()",
                  desc => <<"Bytes asked of the kernel (capped at "
                            "net.core.rmem_max).">>}}]}.

ejabberd_started() ->
    Host = ejabberd_config:get_myname(),
    apply_buffer(gen_mod:get_module_opt(Host, ?MODULE, receive_buffer)).

%% The UDP sockets of the ejabberd_stun listeners in the configuration.
apply_buffer(Bytes) ->
    Ports = [Port || {{Port, _Ip, udp}, ejabberd_stun, _Opts} <- ejabberd_option:listen()],
    lists:foreach(
      fun(Socket) -> inet:setopts(Socket, [{recbuf, Bytes}]) end,
      [Socket || Socket <- erlang:ports(),
                 is_listener(Socket, Ports, erlang:port_info(Socket, name))]).

is_listener(Socket, Ports, {name, "udp_inet"}) ->
    case inet:sockname(Socket) of
        {ok, {_Address, Port}} -> lists:member(Port, Ports);
        _ -> false
    end;
is_listener(_Socket, _Ports, _Name) -> false.
