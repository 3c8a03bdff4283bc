%% The publisher's frames and buffer. Against a real RabbitMQ (receipts,
%% a restart, a full buffer): molecule/default/tests/test_event_bus.py.
-module(pi_im_stomp_tests).

-include_lib("eunit/include/eunit.hrl").

dropped(Count, First, Last) ->
    {<<"events.dropped">>, iolist_to_binary(io_lib:format("~B ~B ~B", [Count, First, Last]))}.

fill(Buffer, Events) ->
    lists:foldl(fun(N, B) -> pi_im_stomp:add(B, {<<"k">>, integer_to_binary(N)}, N, fun dropped/3) end,
                Buffer, Events).

bodies(Events) -> [Body || {_Seq, {_Key, Body}} <- Events].

a_send_frame_is_a_persistent_publish_with_a_receipt_test() ->
    Frame = iolist_to_binary(pi_im_stomp:send_frame(<<"pi-im.events">>, <<"message.chat">>,
                                                    7, <<"{\"a\":1}">>)),
    ?assertEqual(<<"SEND\ndestination:/exchange/pi-im.events/message.chat\n"
                   "persistent:true\ncontent-type:application/json\ncontent-length:7\n"
                   "receipt:7\n\n{\"a\":1}", 0>>, Frame).

connect_escapes_what_stomp_headers_cannot_hold_test() ->
    Frame = iolist_to_binary(pi_im_stomp:connect_frame(<<"pi-im">>, <<"ejabberd">>,
                                                       <<"a:b\nc\\d">>)),
    ?assertNotEqual(nomatch, binary:match(Frame, <<"\npasscode:a\\cb\\nc\\\\d\n">>)),
    ?assertNotEqual(nomatch, binary:match(Frame, <<"\nhost:pi-im\n">>)).

frames_are_split_at_nul_and_a_partial_one_is_kept_test() ->
    Data = <<"\nRECEIPT\nreceipt-id:3\n\n", 0, "\n\nRECEIPT\nreceipt-id:4\n\n", 0,
             "ERROR\nmessage:access_refused\n\nno", 0, "RECEI">>,
    {Frames, Rest} = pi_im_stomp:frames(Data),
    ?assertEqual([{<<"RECEIPT">>, [{<<"receipt-id">>, <<"3">>}], <<>>},
                  {<<"RECEIPT">>, [{<<"receipt-id">>, <<"4">>}], <<>>},
                  {<<"ERROR">>, [{<<"message">>, <<"access_refused">>}], <<"no">>}], Frames),
    ?assertEqual(<<"RECEI">>, Rest),
    ?assertEqual(<<"access_refused">>, pi_im_stomp:header(<<"message">>, element(2, lists:last(Frames)))).

the_window_bounds_what_is_sent_and_receipts_free_it_test() ->
    B0 = fill(pi_im_stomp:new_buffer(2000), lists:seq(1, 600)),
    First = pi_im_stomp:to_send(B0),
    ?assertEqual(512, length(First)),
    ?assertEqual(<<"1">>, hd(bodies(First))),
    B1 = pi_im_stomp:sent(B0, First),
    ?assertEqual([], pi_im_stomp:to_send(B1)),
    {B2, 1} = pi_im_stomp:receipt(B1, 5),
    %% A receipt already taken, or for an event not sent on this connection.
    ?assertMatch({_, 0}, pi_im_stomp:receipt(B2, 5)),
    ?assertMatch({_, 0}, pi_im_stomp:receipt(B2, 513)),
    ?assertEqual([<<"513">>], bodies(pi_im_stomp:to_send(B2))).

a_new_connection_sends_every_unconfirmed_event_again_in_order_test() ->
    B0 = fill(pi_im_stomp:new_buffer(100), lists:seq(1, 10)),
    B1 = pi_im_stomp:sent(B0, pi_im_stomp:to_send(B0)),
    {B2, 1} = pi_im_stomp:receipt(B1, 1),
    {B3, 1} = pi_im_stomp:receipt(B2, 4),
    Again = pi_im_stomp:to_send(pi_im_stomp:reset(B3)),
    ?assertEqual([<<"2">>, <<"3">>, <<"5">>, <<"6">>, <<"7">>, <<"8">>, <<"9">>, <<"10">>],
                 bodies(Again)).

a_full_buffer_drops_new_events_and_says_so_where_they_were_test() ->
    B0 = fill(pi_im_stomp:new_buffer(3), lists:seq(1, 6)),
    ?assertEqual([<<"1">>, <<"2">>, <<"3">>], bodies(pi_im_stomp:to_send(B0))),
    B1 = pi_im_stomp:sent(B0, pi_im_stomp:to_send(B0)),
    {B2, 1} = pi_im_stomp:receipt(B1, 1),
    B3 = fill(B2, [7]),
    ?assertEqual([<<"3 4 6">>, <<"7">>], bodies(pi_im_stomp:to_send(B3))),
    ?assertMatch([{_, {<<"events.dropped">>, _}} | _], pi_im_stomp:to_send(B3)).
