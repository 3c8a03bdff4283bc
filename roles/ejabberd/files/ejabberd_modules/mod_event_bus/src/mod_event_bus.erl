%% What happens on the chat server, published to the appliance's event bus
%% (a durable topic exchange on the local RabbitMQ) as versioned JSON.
%%
%% Each event type is one routing key and one hook, registered only when the
%% type is switched on (option `events`), so a type that is off costs
%% nothing:
%%
%%   message.chat       user_send_packet, after mod_mam (88) gave the
%%                      message its archive id, before that id is stripped
%%                      (500): a one-to-one message a user of this host sent
%%   message.groupchat  muc_filter_message, after mod_mam (50): a message to
%%                      a room, as the room passes it on
%%   user.login/logout  sm_register_connection_hook / sm_remove_connection_hook
%%   user.created/deleted  register_user / remove_user
%%   room.created/destroyed  create_room / remove_room
%%
%% A message event carries metadata (who, to whom, its ids, whether it held
%% a file or was encrypted); its text only with `bodies: true`, and never
%% the fallback text of an encrypted one. Only messages with content are
%% published: chat states and receipts are not events.
%%
%% The event is built and encoded in the process that runs the hook (the
%% sender's session, the room), then cast to the host's publisher
%% (pi_im_stomp), which owns the connection to RabbitMQ, the buffer and
%% the receipts. The schema: docs/events.md and events/pi_im_events/schema.
-module(mod_event_bus).

-behaviour(gen_mod).

%% Debian packages the xmpp library as p1_xmpp (bookworm: only so).
-include_lib("p1_xmpp/include/xmpp.hrl").
-include_lib("ejabberd/include/ejabberd_commands.hrl").
-include_lib("ejabberd/include/mod_muc_room.hrl").

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1,
         mod_doc/0]).
-export([user_send_packet/1, muc_filter_message/3, user_login/3, user_logout/3,
         user_created/2, user_deleted/2, room_created/3, room_destroyed/3]).
-export([event_bus_status/1, dropped/4]).
%% For the appliance's other modules (mod_moderation, mod_bots): events of their own,
%% whichever types are switched on here (under their own routing key if need be), how a
%% message is encrypted, and JSON read with the library events are written with.
-export([publish_event/3, publish_event/4, encryption/1, decode/1]).
-ifdef(TEST).
-export([envelope/4, message_data/3, encode/1, encoder/0]).
-endif.

-define(VERSION, 1).
-define(TYPES, ['message.chat', 'message.groupchat', 'user.login', 'user.logout',
                'user.created', 'user.deleted', 'room.created', 'room.destroyed']).

start(Host, Opts) ->
    persistent_term:put({?MODULE, encoder}, encoder()),
    ok = start_publisher(Host, Opts),
    set_hooks(add, Host, Opts),
    ejabberd_commands:register_commands(?MODULE, commands()).

%% See mod_upload_space: commands are unregistered with their definer set.
stop(Host) ->
    set_hooks(delete, Host, gen_mod:get_module_opts(Host, ?MODULE)),
    stop_publisher(Host),
    case gen_mod:is_loaded_elsewhere(Host, ?MODULE) of
        false ->
            ejabberd_commands:unregister_commands(
              [C#ejabberd_commands{definer = ?MODULE} || C <- commands()]);
        true -> ok
    end.

%% New switches take effect at once; a new publisher (port, buffer) gets
%% the old one's events: the old one stops cleanly, waiting for receipts.
reload(Host, NewOpts, OldOpts) ->
    set_hooks(delete, Host, OldOpts),
    set_hooks(add, Host, NewOpts),
    case publisher_opts(Host, NewOpts) == publisher_opts(Host, OldOpts) of
        true -> ok;
        false ->
            stop_publisher(Host),
            ok = start_publisher(Host, NewOpts)
    end.

depends(_Host, _Opts) -> [].

mod_opt_type(events) -> econf:list(econf:enum(?TYPES), [unique]);
mod_opt_type(bodies) -> econf:bool();
mod_opt_type(buffer) -> econf:pos_int();
mod_opt_type(port) -> econf:port();
mod_opt_type(vhost) -> econf:binary();
mod_opt_type(login) -> econf:binary();
mod_opt_type(password_file) -> econf:binary("^/");
mod_opt_type(exchange) -> econf:binary("^[A-Za-z0-9._-]{1,127}$").

mod_options(_Host) ->
    [{events, ?TYPES}, {bodies, false}, {buffer, 20000}, {port, 61613},
     {vhost, <<"pi-im">>}, {login, <<"ejabberd">>},
     {password_file, <<"/etc/ejabberd/event-bus.password">>},
     {exchange, <<"pi-im.events">>}].

mod_doc() ->
    #{desc => <<"Publishes the server's events to RabbitMQ over STOMP.">>,
      opts => [{events, #{value => "[Type]", desc => <<"The event types published.">>}},
               {bodies, #{value => "true | false",
                          desc => <<"Whether message events carry the text.">>}},
               {buffer, #{value => "Number",
                          desc => <<"Events held while RabbitMQ is away.">>}},
               {port, #{value => "Port", desc => <<"RabbitMQ's STOMP port on loopback.">>}},
               {vhost, #{value => "Name", desc => <<"RabbitMQ's virtual host.">>}},
               {login, #{value => "Name", desc => <<"The publishing user.">>}},
               {password_file, #{value => "Path", desc => <<"Its password.">>}},
               {exchange, #{value => "Name", desc => <<"The topic exchange.">>}}]}.

%%%===================================================================
%%% The publisher
%%%===================================================================
proc(Host) -> gen_mod:get_module_proc(Host, ?MODULE).

publisher_opts(Host, Opts) ->
    #{port => opt(port, Opts), vhost => opt(vhost, Opts),
      login => opt(login, Opts),
      password_file => opt(password_file, Opts),
      exchange => opt(exchange, Opts),
      buffer => opt(buffer, Opts),
      dropped => fun(Count, First, Last) -> dropped(Host, Count, First, Last) end}.

opt(Name, Opts) -> gen_mod:get_opt(Name, Opts).

start_publisher(Host, Opts) ->
    Proc = proc(Host),
    pi_im_user_set:ensure_child(
      #{id => Proc, restart => permanent, shutdown => 10000,
        start => {pi_im_stomp, start_link, [Proc, {Host, publisher_opts(Host, Opts)}]}}).

stop_publisher(Host) ->
    Proc = proc(Host),
    _ = supervisor:terminate_child(ejabberd_gen_mod_sup, Proc),
    _ = supervisor:delete_child(ejabberd_gen_mod_sup, Proc),
    ok.

publish(Host, Type, Data) ->
    publish(Host, Type, atom_to_binary(Type, utf8), Data).

publish(Host, Type, RoutingKey, Data) ->
    Body = encode(envelope(Host, Type, erlang:system_time(microsecond), Data)),
    pi_im_stomp:publish(proc(Host), RoutingKey, Body).

%% Another module's event: published while this module runs on the host.
publish_event(Host, Type, Data) when is_atom(Type), is_map(Data) ->
    publish(Host, Type, Data).

%% The same with a routing key of its own (bot.message.<bot>: one bot's webhook binds it).
publish_event(Host, Type, RoutingKey, Data)
  when is_atom(Type), is_binary(RoutingKey), is_map(Data) ->
    publish(Host, Type, RoutingKey, Data).

%% The event that stands where events were dropped (buffer full).
dropped(Host, Count, FirstMs, LastMs) ->
    Data = #{<<"count">> => Count, <<"first">> => rfc3339(FirstMs * 1000),
             <<"last">> => rfc3339(LastMs * 1000)},
    {<<"events.dropped">>,
     encode(envelope(Host, 'events.dropped', erlang:system_time(microsecond), Data))}.

%%%===================================================================
%%% Hooks
%%%===================================================================
set_hooks(Action, Host, Opts) ->
    Types = opt(events, Opts),
    Hooks = lists:usort([Hook || Type <- Types, Hook <- hooks_of(Type)]),
    [ejabberd_hooks:Action(Name, Host, ?MODULE, Function, Priority)
     || {Name, Function, Priority} <- Hooks],
    ok.

hooks_of('message.chat') -> [{user_send_packet, user_send_packet, 100}];
hooks_of('message.groupchat') -> [{muc_filter_message, muc_filter_message, 60}];
hooks_of('user.login') -> [{sm_register_connection_hook, user_login, 80}];
hooks_of('user.logout') -> [{sm_remove_connection_hook, user_logout, 80}];
hooks_of('user.created') -> [{register_user, user_created, 80}];
hooks_of('user.deleted') -> [{remove_user, user_deleted, 80}];
hooks_of('room.created') -> [{create_room, room_created, 80}];
hooks_of('room.destroyed') -> [{remove_room, room_destroyed, 80}].

user_send_packet({#message{type = Type, to = To} = Pkt, #{jid := From, lserver := Host}} = Acc)
  when Type == chat; Type == normal ->
    case message_data(Pkt, bodies(Host), xmpp:get_meta(Pkt, stanza_id, undefined)) of
        none -> ok;
        Data ->
            publish(Host, 'message.chat',
                    Data#{<<"from">> => jid:encode(From), <<"to">> => jid:encode(To)})
    end,
    Acc;
user_send_packet(Acc) ->
    Acc.

%% A room's own messages (subjects, moderation, private messages through the
%% room) are marked mam_ignore by ejabberd 24.12: not chat.
muc_filter_message(#message{type = groupchat, from = From} = Pkt,
                   #state{jid = Room, server_host = Host}, Nick) ->
    case xmpp:get_meta(Pkt, mam_ignore, false) of
        true -> ok;
        false ->
            case message_data(Pkt, bodies(Host), xmpp:get_meta(Pkt, stanza_id, undefined)) of
                none -> ok;
                Data ->
                    RoomJID = jid:encode(jid:remove_resource(Room)),
                    publish(Host, 'message.groupchat',
                            Data#{<<"from">> => jid:encode(From), <<"nick">> => Nick,
                                  <<"room">> => RoomJID, <<"to">> => RoomJID})
            end
    end,
    Pkt;
muc_filter_message(Pkt, _State, _Nick) ->
    Pkt.

user_login(_SID, #jid{lserver = Host} = JID, Info) ->
    publish(Host, 'user.login', session(JID, Info)).

user_logout(_SID, #jid{lserver = Host} = JID, Info) ->
    publish(Host, 'user.logout', session(JID, Info)).

user_created(User, Host) ->
    publish(Host, 'user.created', #{<<"jid">> => jid:encode(jid:make(User, Host))}).

user_deleted(User, Host) ->
    publish(Host, 'user.deleted', #{<<"jid">> => jid:encode(jid:make(User, Host))}).

room_created(ServerHost, Room, MucHost) ->
    publish(ServerHost, 'room.created', #{<<"room">> => jid:encode(jid:make(Room, MucHost))}).

room_destroyed(ServerHost, Room, MucHost) ->
    publish(ServerHost, 'room.destroyed',
            #{<<"room">> => jid:encode(jid:make(Room, MucHost))}).

session(JID, Info) ->
    Connection = case proplists:get_value(conn, Info) of
                     undefined -> null;
                     Conn -> atom_to_binary(Conn, utf8)
                 end,
    #{<<"jid">> => jid:encode(JID), <<"connection">> => Connection}.

bodies(Host) -> gen_mod:get_module_opt(Host, ?MODULE, bodies).

%%%===================================================================
%%% Events (pure: EUnit tests these)
%%%===================================================================
envelope(Host, Type, TimeUs, Data) ->
    #{<<"version">> => ?VERSION,
      <<"id">> => string:lowercase(binary:encode_hex(crypto:strong_rand_bytes(16))),
      <<"type">> => atom_to_binary(Type, utf8),
      <<"time">> => rfc3339(TimeUs),
      <<"host">> => Host,
      <<"data">> => Data}.

rfc3339(TimeUs) ->
    list_to_binary(calendar:system_time_to_rfc3339(TimeUs, [{unit, microsecond},
                                                            {offset, "Z"}])).

%% none for a message without content (a chat state, a receipt).
message_data(#message{body = BodyEls, id = Id} = Pkt, Bodies, StanzaId) ->
    Body = xmpp:get_text(BodyEls),
    Encryption = encryption(Pkt),
    File = xmpp:get_subtag(Pkt, #oob_x{}) /= false,
    case Body == <<>> andalso Encryption == null andalso not File of
        true -> none;
        false ->
            Data = #{<<"message_id">> => null_if_empty(Id),
                     <<"origin_id">> => origin_id(Pkt),
                     <<"stanza_id">> => case StanzaId of
                                            undefined -> null;
                                            _ -> integer_to_binary(StanzaId)
                                        end,
                     <<"file">> => File,
                     <<"encryption">> => Encryption},
            case Bodies andalso Encryption == null andalso Body /= <<>> of
                true -> Data#{<<"body">> => Body};
                false -> Data
            end
    end.

origin_id(Pkt) ->
    case xmpp:get_subtag(Pkt, #origin_id{}) of
        #origin_id{id = Id} -> null_if_empty(Id);
        false -> null
    end.

%% By the namespace of the payload (XEP-0384 OMEMO, old and new, XEP-0373
%% OpenPGP, XEP-0027 legacy PGP); null when not encrypted.
encryption(#message{sub_els = Els}) ->
    Found = [Name || El <- Els,
                     Name <- [encryption_of(catch xmpp:get_ns(El))], Name /= null],
    case Found of
        [Name | _] -> Name;
        [] -> null
    end.

encryption_of(<<"eu.siacs.conversations.axolotl">>) -> <<"omemo">>;
encryption_of(<<"urn:xmpp:omemo:2">>) -> <<"omemo2">>;
encryption_of(<<"urn:xmpp:openpgp:0">>) -> <<"openpgp">>;
encryption_of(<<"jabber:x:encrypted">>) -> <<"pgp">>;
encryption_of(_) -> null.

null_if_empty(<<>>) -> null;
null_if_empty(Value) -> Value.

%% OTP 27's json (trixie), or jiffy, which ejabberd 23.01 uses (bookworm).
encoder() ->
    case code:ensure_loaded(json) of
        {module, json} -> json;
        _ -> jiffy
    end.

encode(Term) ->
    Encoder = persistent_term:get({?MODULE, encoder}, jiffy),
    iolist_to_binary(Encoder:encode(Term)).

decode(Json) ->
    case encoder() of
        json -> json:decode(Json);
        jiffy -> jiffy:decode(Json, [return_maps])
    end.

%%%===================================================================
%%% Command
%%%===================================================================
commands() ->
    [#ejabberd_commands{
        name = event_bus_status, tags = [stats],
        desc = "The event bus publisher's state for a host",
        module = ?MODULE, function = event_bus_status,
        args = [{host, binary}], args_example = [<<"example.org">>],
        args_desc = ["Virtual host"],
        result = {status, {tuple, [{connected, atom}, {buffered, integer},
                                   {in_flight, integer}, {confirmed, integer},
                                   {dropped, integer}, {last_error, string}]}},
        result_example = {true, 0, 0, 1200, 0, ""},
        result_desc = "Connected to RabbitMQ, events waiting, waiting for a receipt, "
                      "confirmed and dropped since the start, the last error"}].

event_bus_status(Host) ->
    #{connected := Connected, buffered := Buffered, in_flight := InFlight,
      confirmed := Confirmed, dropped := Dropped, last_error := Error} =
        pi_im_stomp:status(proc(Host)),
    {Connected, Buffered, InFlight, Confirmed, Dropped, binary_to_list(Error)}.
