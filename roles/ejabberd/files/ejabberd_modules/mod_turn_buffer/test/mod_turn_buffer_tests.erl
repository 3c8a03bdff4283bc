%% Which sockets get the buffer: UDP sockets on a STUN/TURN listener's port,
%% nothing else. The buffer itself under load: bench/scenarios/calls-4000.toml
%% and molecule/default/tests/test_calls.py.
-module(mod_turn_buffer_tests).

-include_lib("eunit/include/eunit.hrl").

listener_port_test() ->
    {ok, Socket} = gen_udp:open(0, [binary]),
    {ok, Port} = inet:port(Socket),
    try
        ?assert(mod_turn_buffer:is_listener(Socket, [Port], erlang:port_info(Socket, name))),
        ?assertNot(mod_turn_buffer:is_listener(Socket, [Port + 1], erlang:port_info(Socket, name)))
    after
        gen_udp:close(Socket)
    end.

tcp_sockets_are_left_alone_test() ->
    {ok, Listen} = gen_tcp:listen(0, []),
    {ok, Port} = inet:port(Listen),
    try
        ?assertNot(mod_turn_buffer:is_listener(Listen, [Port], erlang:port_info(Listen, name)))
    after
        gen_tcp:close(Listen)
    end.

closed_sockets_are_skipped_test() ->
    {ok, Socket} = gen_udp:open(0, [binary]),
    {ok, Port} = inet:port(Socket),
    Name = erlang:port_info(Socket, name),
    gen_udp:close(Socket),
    ?assertNot(mod_turn_buffer:is_listener(Socket, [Port], Name)).
