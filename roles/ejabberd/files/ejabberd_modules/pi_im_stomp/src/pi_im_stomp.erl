%% The event bus's publisher: one process per host that hands events to the
%% local RabbitMQ over STOMP and keeps each until RabbitMQ has confirmed it.
%%
%% STOMP (RabbitMQ's rabbitmq_stomp plugin) because it is a few lines of
%% text over a TCP socket: no AMQP client library is packaged for ejabberd's
%% Erlang. A SEND with a `receipt` header to /exchange/NAME/KEY is published
%% to that exchange with that routing key, and RabbitMQ sends the RECEIPT
%% only once the message is confirmed (publisher confirms): persistent and in
%% every durable queue it was routed to. So an event leaves the buffer on its
%% receipt, never on the send; a connection lost before the receipt sends it
%% again (at least once: a consumer can see an event twice, never zero times).
%%
%% Nothing here ever waits on RabbitMQ: events arrive as casts, go into a
%% buffer of at most `buffer` events, and are sent while fewer than ?WINDOW
%% wait for their receipt, so what is on the wire always fits the socket's
%% buffers and a send does not block even when RabbitMQ stops reading (its
%% memory or disk alarm). While RabbitMQ is down or blocked the buffer fills;
%% once full, new events are counted and dropped, and the first event that
%% fits again is preceded by an `events.dropped` event saying how many and
%% when. A clean stop of ejabberd waits up to ?STOP_WAIT for the buffer's
%% receipts.
-module(pi_im_stomp).

-behaviour(gen_server).

-export([start_link/2, publish/3, status/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-ifdef(TEST).
-export([connect_frame/3, send_frame/4, frames/1, header/2, add/4, receipt/2,
         to_send/1, sent/2, reset/1, new_buffer/1]).
-endif.

%% Events sent and not yet confirmed: about 0.5 MB of frames at most.
-define(WINDOW, 512).
-define(RETRY_MIN, 1000).
-define(RETRY_MAX, 10000).
-define(CONNECT_TIMEOUT, 10000).
-define(STOP_WAIT, 5000).

%% The buffer: every event not yet confirmed, keyed by its sequence number
%% (oldest first), and how far the current connection has sent.
-record(buffer, {events = gb_trees:empty() :: gb_trees:tree(),
                 max :: pos_integer(),
                 next = 1 :: pos_integer(),
                 sent = 0 :: non_neg_integer(),
                 in_flight = 0 :: non_neg_integer(),
                 dropped = 0 :: non_neg_integer(),
                 first_drop :: undefined | integer(),
                 last_drop :: undefined | integer()}).

-record(state, {host :: binary(),
                opts :: map(),
                socket :: undefined | gen_tcp:socket(),
                phase = down :: down | connecting | up,
                incoming = <<>> :: binary(),
                buffer :: #buffer{},
                retry = ?RETRY_MIN :: pos_integer(),
                timer :: undefined | reference(),
                confirmed = 0 :: non_neg_integer(),
                dropped_total = 0 :: non_neg_integer(),
                last_error = <<>> :: binary()}).

%% Opts: #{port, vhost, login, password_file, exchange, buffer, dropped}
%% where `dropped` is fun((Count, FirstMs, LastMs) -> {RoutingKey, Body}).
start_link(Name, {Host, Opts}) ->
    gen_server:start_link({local, Name}, ?MODULE, {Host, Opts}, []).

%% Never blocks: a cast, whatever RabbitMQ is doing.
publish(Name, RoutingKey, Body) ->
    gen_server:cast(Name, {publish, RoutingKey, Body}).

status(Name) ->
    gen_server:call(Name, status).

%%%===================================================================
%%% gen_server
%%%===================================================================
init({Host, #{buffer := Max} = Opts}) ->
    process_flag(trap_exit, true),
    self() ! connect,
    {ok, #state{host = Host, opts = Opts, buffer = new_buffer(Max)}}.

handle_call(status, _From, #state{buffer = B} = State) ->
    {reply, #{connected => State#state.phase == up,
              buffered => gb_trees:size(B#buffer.events),
              in_flight => B#buffer.in_flight,
              confirmed => State#state.confirmed,
              dropped => State#state.dropped_total,
              last_error => State#state.last_error}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_request}, State}.

handle_cast({publish, Key, Body}, #state{buffer = B, opts = Opts} = State) ->
    Now = erlang:system_time(millisecond),
    Dropped = maps:get(dropped, Opts),
    B1 = add(B, {Key, Body}, Now, Dropped),
    Total = State#state.dropped_total + (B1#buffer.dropped - B#buffer.dropped),
    case B#buffer.dropped == 0 andalso B1#buffer.dropped == 1 of
        true ->
            logger:warning("Event bus of ~ts: ~B events wait for RabbitMQ; "
                           "dropping new events until it takes them (~ts)",
                           [State#state.host, B#buffer.max, why(State)]);
        false -> ok
    end,
    %% Sent once the mailbox is empty (timeout 0): the events that arrived
    %% together go out in one write.
    {noreply, State#state{buffer = B1, dropped_total = Total}, 0};
handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info(timeout, State) ->
    {noreply, pump(State)};
handle_info(connect, State) ->
    {noreply, connect(State#state{timer = undefined})};
%% Only the attempt it was set for: an earlier one's may arrive during a later attempt.
handle_info({connect_timeout, Socket}, #state{phase = connecting, socket = Socket} = State) ->
    {noreply, down(State, <<"RabbitMQ did not answer the STOMP CONNECT">>)};
handle_info({tcp, Socket, Data}, #state{socket = Socket} = State) ->
    ok = inet:setopts(Socket, [{active, once}]),
    {Frames, Rest} = frames(<<(State#state.incoming)/binary, Data/binary>>),
    {noreply, pump(lists:foldl(fun handle_frame/2,
                               State#state{incoming = Rest}, Frames))};
handle_info({tcp_closed, Socket}, #state{socket = Socket} = State) ->
    {noreply, down(State, <<"RabbitMQ closed the connection">>)};
handle_info({tcp_error, Socket, Reason}, #state{socket = Socket} = State) ->
    {noreply, down(State, reason(Reason))};
handle_info(_Info, State) ->
    {noreply, State}.

terminate(_Reason, #state{phase = up} = State) ->
    Deadline = erlang:monotonic_time(millisecond) + ?STOP_WAIT,
    drain(pump(State), Deadline);
terminate(_Reason, State) ->
    report_lost(State).

%%%===================================================================
%%% Connection
%%%===================================================================
connect(#state{opts = #{port := Port} = Opts} = State) ->
    case read_password(maps:get(password_file, Opts)) of
        {error, Why} ->
            retry(State#state{last_error = Why});
        {ok, Password} ->
            %% The window keeps what is on the wire far below these buffers.
            case gen_tcp:connect({127, 0, 0, 1}, Port,
                                 [binary, {active, once}, {nodelay, true},
                                  {sndbuf, 1024 * 1024}, {send_timeout, 5000},
                                  {send_timeout_close, true}], 5000) of
                {ok, Socket} ->
                    Frame = connect_frame(maps:get(vhost, Opts),
                                          maps:get(login, Opts), Password),
                    case gen_tcp:send(Socket, Frame) of
                        ok ->
                            erlang:send_after(?CONNECT_TIMEOUT, self(), {connect_timeout, Socket}),
                            State#state{socket = Socket, phase = connecting,
                                        incoming = <<>>};
                        {error, Reason} ->
                            gen_tcp:close(Socket),
                            retry(State#state{last_error = reason(Reason)})
                    end;
                {error, Reason} ->
                    retry(State#state{last_error = reason(Reason)})
            end
    end.

read_password(File) ->
    case file:read_file(File) of
        {ok, Content} -> {ok, string:trim(Content)};
        {error, Reason} ->
            {error, iolist_to_binary(io_lib:format("~ts: ~ts",
                                                   [File, file:format_error(Reason)]))}
    end.

handle_frame({<<"CONNECTED">>, _Headers, _Body}, #state{phase = connecting} = State) ->
    B = State#state.buffer,
    Waiting = gb_trees:size(B#buffer.events),
    logger:notice("Event bus of ~ts: connected to RabbitMQ; ~B events to send",
                  [State#state.host, Waiting]),
    State#state{phase = up, retry = ?RETRY_MIN, last_error = <<>>};
handle_frame({<<"RECEIPT">>, Headers, _Body}, #state{buffer = B} = State) ->
    case string:to_integer(header(<<"receipt-id">>, Headers)) of
        {Seq, <<>>} ->
            {B1, Confirmed} = receipt(B, Seq),
            State#state{buffer = B1, confirmed = State#state.confirmed + Confirmed};
        _ -> State
    end;
handle_frame({<<"ERROR">>, Headers, Body}, State) ->
    Message = header(<<"message">>, Headers),
    Detail = string:trim(binary:part(Body, 0, min(byte_size(Body), 300))),
    down(State, <<"RabbitMQ: ", Message/binary, " ", Detail/binary>>);
handle_frame(_Other, State) ->
    State.

%% The connection is gone: every event sent on it is sent again on the next.
down(#state{socket = Socket, phase = Phase} = State, Why) ->
    case Socket of
        undefined -> ok;
        _ -> gen_tcp:close(Socket)
    end,
    case Phase of
        up -> logger:warning("Event bus of ~ts: lost RabbitMQ (~ts); buffering up "
                             "to ~B events", [State#state.host, Why,
                                               (State#state.buffer)#buffer.max]);
        _ -> ok
    end,
    retry(State#state{socket = undefined, phase = down, incoming = <<>>,
                      buffer = reset(State#state.buffer), last_error = Why}).

retry(#state{retry = Retry, timer = undefined} = State) ->
    Timer = erlang:send_after(Retry, self(), connect),
    State#state{timer = Timer, retry = min(Retry * 2, ?RETRY_MAX), phase = down};
retry(State) ->
    State#state{phase = down}.

%% Send what the window allows, in one write.
pump(#state{phase = up, socket = Socket, buffer = B,
            opts = #{exchange := Exchange}} = State) ->
    case to_send(B) of
        [] -> State;
        Events ->
            Frames = [send_frame(Exchange, Key, Seq, Body) || {Seq, {Key, Body}} <- Events],
            case gen_tcp:send(Socket, Frames) of
                ok -> State#state{buffer = sent(B, Events)};
                {error, Reason} -> down(State, reason(Reason))
            end
    end;
pump(State) ->
    State.

%% A clean stop: what is buffered goes out, and its receipts are awaited.
drain(#state{buffer = B, socket = Socket} = State, Deadline) ->
    Left = Deadline - erlang:monotonic_time(millisecond),
    case gb_trees:is_empty(B#buffer.events) orelse Left =< 0 of
        true -> report_lost(State);
        false ->
            receive
                {tcp, Socket, Data} ->
                    inet:setopts(Socket, [{active, once}]),
                    {Frames, Rest} = frames(<<(State#state.incoming)/binary, Data/binary>>),
                    State1 = lists:foldl(fun handle_frame/2,
                                         State#state{incoming = Rest}, Frames),
                    case State1#state.phase of
                        up -> drain(pump(State1), Deadline);
                        _ -> report_lost(State1)
                    end;
                {tcp_closed, Socket} -> report_lost(State)
            after Left -> report_lost(State)
            end
    end.

report_lost(#state{buffer = B, host = Host}) ->
    case gb_trees:size(B#buffer.events) of
        0 -> ok;
        Lost -> logger:warning("Event bus of ~ts: stopped with ~B events RabbitMQ "
                               "had not confirmed: they are lost", [Host, Lost])
    end.

why(#state{phase = up}) -> <<"RabbitMQ is slow to confirm">>;
why(#state{last_error = <<>>}) -> <<"RabbitMQ not connected">>;
why(#state{last_error = Error}) -> Error.

reason(Reason) -> iolist_to_binary(io_lib:format("~p", [Reason])).

%%%===================================================================
%%% The buffer (pure: EUnit tests these)
%%%===================================================================
new_buffer(Max) -> #buffer{max = Max}.

%% A new event, or a drop when the buffer is full. The first event that fits
%% after drops is preceded by Dropped(Count, First, Last)'s event.
add(#buffer{events = Events, max = Max} = B, Event, Now, Dropped) ->
    case gb_trees:size(Events) >= Max of
        true ->
            First = case B#buffer.first_drop of undefined -> Now; F -> F end,
            B#buffer{dropped = B#buffer.dropped + 1, first_drop = First, last_drop = Now};
        false when B#buffer.dropped == 0 ->
            insert(B, Event);
        false ->
            Notice = Dropped(B#buffer.dropped, B#buffer.first_drop, B#buffer.last_drop),
            B1 = B#buffer{dropped = 0, first_drop = undefined, last_drop = undefined},
            insert(insert(B1, Notice), Event)
    end.

insert(#buffer{events = Events, next = Seq} = B, Event) ->
    B#buffer{events = gb_trees:insert(Seq, Event, Events), next = Seq + 1}.

%% Events the window lets go now, oldest first.
to_send(#buffer{in_flight = InFlight}) when InFlight >= ?WINDOW -> [];
to_send(#buffer{events = Events, sent = Sent, in_flight = InFlight}) ->
    take(gb_trees:next(gb_trees:iterator_from(Sent + 1, Events)), ?WINDOW - InFlight).

take(none, _N) -> [];
take(_, 0) -> [];
take({Seq, Event, Iter}, N) -> [{Seq, Event} | take(gb_trees:next(Iter), N - 1)].

sent(#buffer{in_flight = InFlight} = B, Events) ->
    {Last, _} = lists:last(Events),
    B#buffer{sent = Last, in_flight = InFlight + length(Events)}.

%% RabbitMQ confirmed Seq: {Buffer, 1}, or {Buffer, 0} for a receipt already
%% taken (or of an earlier connection).
receipt(#buffer{events = Events, sent = Sent, in_flight = InFlight} = B, Seq) ->
    case gb_trees:is_defined(Seq, Events) andalso Seq =< Sent of
        true -> {B#buffer{events = gb_trees:delete(Seq, Events),
                          in_flight = InFlight - 1}, 1};
        false -> {B, 0}
    end.

%% A new connection: nothing of the buffer is on it yet.
reset(B) -> B#buffer{sent = 0, in_flight = 0}.

%%%===================================================================
%%% STOMP 1.2 frames
%%%===================================================================
connect_frame(VHost, Login, Password) ->
    [<<"CONNECT\naccept-version:1.2\nheart-beat:0,0\nhost:">>, escape(VHost),
     <<"\nlogin:">>, escape(Login), <<"\npasscode:">>, escape(Password),
     <<"\n\n", 0>>].

send_frame(Exchange, Key, Seq, Body) ->
    [<<"SEND\ndestination:/exchange/">>, escape(Exchange), $/, escape(Key),
     <<"\npersistent:true\ncontent-type:application/json\ncontent-length:">>,
     integer_to_binary(byte_size(Body)), <<"\nreceipt:">>, integer_to_binary(Seq),
     <<"\n\n">>, Body, <<0>>].

%% STOMP 1.2's header escapes (a vhost or password may hold ":").
escape(Value) ->
    binary:replace(
      binary:replace(
        binary:replace(
          binary:replace(iolist_to_binary(Value), <<"\\">>, <<"\\\\">>, [global]),
          <<":">>, <<"\\c">>, [global]),
        <<"\n">>, <<"\\n">>, [global]),
      <<"\r">>, <<"\\r">>, [global]).

%% Complete frames in Data as {Command, Headers, Body}, and what is left of
%% the next one. RabbitMQ's frames to a publisher (CONNECTED, RECEIPT, ERROR)
%% hold no NUL in their bodies; newlines between frames are heart-beats.
frames(Data) ->
    case binary:split(Data, <<0>>) of
        [Rest] -> {[], Rest};
        [Frame, Rest] ->
            {More, Left} = frames(Rest),
            case parse(string:trim(Frame, leading, "\r\n")) of
                none -> {More, Left};
                Parsed -> {[Parsed | More], Left}
            end
    end.

parse(<<>>) -> none;
parse(Frame) ->
    {Head, Body} = case binary:split(Frame, <<"\n\n">>) of
                       [H, Bd] -> {H, Bd};
                       [H] -> {H, <<>>}
                   end,
    [Command | Lines] = binary:split(Head, [<<"\r\n">>, <<"\n">>], [global]),
    Headers = [list_to_tuple(binary:split(Line, <<":">>)) || Line <- Lines,
                                                             binary:match(Line, <<":">>) /= nomatch],
    {Command, Headers, Body}.

header(Name, Headers) ->
    case lists:keyfind(Name, 1, Headers) of
        {_, Value} -> Value;
        false -> <<>>
    end.
