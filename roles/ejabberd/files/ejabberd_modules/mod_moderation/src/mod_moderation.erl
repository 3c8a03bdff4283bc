%% The operators' word and pattern list, applied inline before a message is
%% archived, published or delivered:
%%
%%   user_send_packet, 20      one-to-one messages a user of this host sends
%%                             (before mod_caps at 75, mod_mam at 88 and
%%                             mod_event_bus at 100)
%%   muc_filter_message, 20    messages to a room (before mod_mam at 50)
%%
%% A block rule refuses the message with policy-violation to its sender; a
%% mask rule replaces what it matched. Each is told on the event bus
%% (moderation.blocked, moderation.masked: who, to whom, which rules; the
%% text only when the owner keeps it), and a XEP-0377 spam report (a
%% <report/> in a blocking request) as moderation.report; the console records
%% them. End-to-end encrypted messages are never read: their body is a
%% fallback, not what was said.
%%
%% The rules are the console's: it sets them with moderation_set_rules, which
%% checks them all (a pattern PCRE cannot compile, a word that is not one)
%% before anything changes, and keeps them in rules_file for the next start.
-module(mod_moderation).

-behaviour(gen_mod).

-include_lib("p1_xmpp/include/xmpp.hrl").
-include_lib("ejabberd/include/ejabberd_commands.hrl").
-include_lib("ejabberd/include/mod_muc_room.hrl").

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1,
         mod_doc/0]).
-export([user_send_packet/1, muc_filter_message/3]).
-export([moderation_set_rules/2, moderation_rules/1]).
-ifdef(TEST).
-export([parse/1, apply_rules/2, reports/1]).
-endif.

-define(BLOCKING, <<"urn:xmpp:blocking">>).
%% XEP-0377 0.3 (a reason attribute) and 0.2 (a <spam/> or <abuse/> child).
-define(REPORTING_1, <<"urn:xmpp:reporting:1">>).
-define(REPORTING_0, <<"urn:xmpp:reporting:0">>).
-define(EMPTY, <<"{\"keep_text\":false,\"rules\":[]}">>).

start(Host, Opts) ->
    load(Host, gen_mod:get_opt(rules_file, Opts)),
    ejabberd_hooks:add(user_send_packet, Host, ?MODULE, user_send_packet, 20),
    ejabberd_hooks:add(muc_filter_message, Host, ?MODULE, muc_filter_message, 20),
    ejabberd_commands:register_commands(?MODULE, commands()).

%% See mod_upload_space: commands are unregistered with their definer set.
stop(Host) ->
    ejabberd_hooks:delete(user_send_packet, Host, ?MODULE, user_send_packet, 20),
    ejabberd_hooks:delete(muc_filter_message, Host, ?MODULE, muc_filter_message, 20),
    _ = persistent_term:erase({?MODULE, Host}),
    case gen_mod:is_loaded_elsewhere(Host, ?MODULE) of
        false ->
            ejabberd_commands:unregister_commands(
              [C#ejabberd_commands{definer = ?MODULE} || C <- commands()]);
        true -> ok
    end.

reload(Host, NewOpts, _OldOpts) ->
    load(Host, gen_mod:get_opt(rules_file, NewOpts)).

depends(_Host, _Opts) -> [].

mod_opt_type(rules_file) -> econf:binary("^/").

mod_options(_Host) ->
    [{rules_file, <<"/var/lib/ejabberd/moderation.json">>}].

mod_doc() ->
    #{desc => <<"Blocks or masks messages by the operators' word and pattern list.">>,
      opts => [{rules_file, #{value => "Path",
                              desc => <<"Where the console's rules are kept.">>}}]}.

%%%===================================================================
%%% Rules
%%%===================================================================
%% The list as it was last set; none (and why, in the log) if the file cannot
%% be read: messages then pass as with an empty list.
load(Host, File) ->
    Loaded = case file:read_file(File) of
                 {ok, Json} -> prepare(Json);
                 {error, enoent} -> prepare(?EMPTY);
                 {error, Why} -> {error, iolist_to_binary(file:format_error(Why))}
             end,
    case Loaded of
        {ok, Set} -> persistent_term:put({?MODULE, Host}, Set);
        {error, Reason} ->
            logger:error("Moderation rules in ~ts not loaded (~ts): none apply", [File, Reason]),
            {ok, None} = prepare(?EMPTY),
            persistent_term:put({?MODULE, Host}, None)
    end.

%% The document checked and compiled, or the first thing wrong with it.
prepare(Json) ->
    case parse(Json) of
        {ok, KeepText, Rules} ->
            case mod_moderation_rules:compile(Rules) of
                {ok, Compiled} ->
                    {ok, #{document => Json, keep_text => KeepText, compiled => Compiled,
                           active => Rules =/= []}};
                {error, Id, Reason} ->
                    {error, iolist_to_binary(io_lib:format("rule ~B: ~ts", [Id, Reason]))}
            end;
        {error, _} = Error -> Error
    end.

%% {"keep_text": false, "rules": [{"id": 1, "kind": "word", "text": "...",
%% "action": "block"}, ...]}
parse(Json) ->
    try mod_event_bus:decode(Json) of
        #{<<"keep_text">> := KeepText, <<"rules">> := List}
          when is_boolean(KeepText), is_list(List) ->
            Rules = [rule(Item) || Item <- List],
            case [Item || {bad, Item} <- Rules] of
                [] -> {ok, KeepText, Rules};
                [_ | _] -> {error, <<"a rule needs an id, a kind (word, pattern), "
                                     "a text and an action (block, mask)">>}
            end;
        _ -> {error, <<"not a rules document">>}
    catch _:_ -> {error, <<"not JSON">>}
    end.

rule(#{<<"id">> := Id, <<"kind">> := Kind, <<"text">> := Text, <<"action">> := Action} = Item)
  when is_integer(Id), Id > 0, is_binary(Text) ->
    case {name(Kind), name(Action)} of
        {K, A} when (K == word orelse K == pattern), (A == block orelse A == mask) ->
            #{id => Id, kind => K, text => Text, action => A};
        _ -> {bad, Item}
    end;
rule(Item) ->
    {bad, Item}.

name(<<"word">>) -> word;
name(<<"pattern">>) -> pattern;
name(<<"block">>) -> block;
name(<<"mask">>) -> mask;
name(_) -> unknown.

rules(Host) ->
    persistent_term:get({?MODULE, Host}, #{document => ?EMPTY, keep_text => false,
                                          compiled => mod_moderation_rules:empty(),
                                          active => false}).

%%%===================================================================
%%% Hooks
%%%===================================================================
user_send_packet({#message{type = Type, body = [_ | _]} = Pkt,
                  #{lserver := Host} = State} = Acc)
  when Type == chat; Type == normal ->
    case moderate(Host, Pkt, chat) of
        pass -> Acc;
        drop -> {stop, {drop, State}};
        {masked, Masked} -> {Masked, State}
    end;
user_send_packet({#iq{type = set, sub_els = [El]}, #{jid := From, lserver := Host}} = Acc) ->
    [report(Host, From, Report) || Report <- reports(El)],
    Acc;
user_send_packet(Acc) ->
    Acc.

muc_filter_message(#message{type = groupchat, body = [_ | _]} = Pkt,
                   #state{jid = Room, server_host = Host}, Nick) ->
    case moderate(Host, Pkt, {Room, Nick}) of
        pass -> Pkt;
        drop -> drop;
        {masked, Masked} -> Masked
    end;
muc_filter_message(Pkt, _State, _Nick) ->
    Pkt.

%% What both hooks do: pass, drop (the sender told), or the message masked;
%% what was done is told on the bus. An empty list costs one read.
moderate(Host, Pkt, Where) ->
    case rules(Host) of
        #{active := false} -> pass;
        Set ->
            case apply_rules(Pkt, Set) of
                pass -> pass;
                {block, Rule} ->
                    refuse(Pkt),
                    tell(Host, Set, 'moderation.blocked', Pkt, [Rule], Where),
                    drop;
                {mask, Masked, Rules} ->
                    tell(Host, Set, 'moderation.masked', Pkt, Rules, Where),
                    {masked, Masked}
            end
    end.

%% pass, {block, Rule} or {mask, Message, Rules}: every body is checked (a
%% message may carry one per language), each masked on its own.
apply_rules(#message{body = Bodies} = Pkt, #{compiled := Compiled}) ->
    case mod_event_bus:encryption(Pkt) of
        null ->
            Outcomes = [{Text, mod_moderation_rules:check(Data, Compiled)}
                        || #text{data = Data} = Text <- Bodies],
            case lists:sort([Id || {_, {block, Id}} <- Outcomes]) of
                [Id | _] -> {block, Id};
                [] ->
                    case lists:usort(lists:append([Ids || {_, {mask, _, Ids}} <- Outcomes])) of
                        [] -> pass;
                        Ids ->
                            Masked = [case Outcome of
                                          {mask, New, _} -> Text#text{data = New};
                                          pass -> Text
                                      end || {Text, Outcome} <- Outcomes],
                            {mask, Pkt#message{body = Masked}, Ids}
                    end
            end;
        _Encrypted -> pass
    end.

refuse(Pkt) ->
    Err = xmpp:err_policy_violation(
            <<"Not sent: the message matches a rule of this server">>, xmpp:get_lang(Pkt)),
    ejabberd_router:route_error(Pkt, Err).

%% The record of it, through the event bus to the console. Without a running
%% publisher (the event bus off) nothing is recorded and the message is still
%% moderated.
tell(Host, #{keep_text := KeepText}, Type,
     #message{from = From, to = To, type = Kind, body = Bodies}, Rules, Where) ->
    Data = #{<<"from">> => jid:encode(jid:remove_resource(From)),
             <<"to">> => jid:encode(jid:remove_resource(To)),
             <<"kind">> => atom_to_binary(Kind, utf8),
             <<"rules">> => Rules},
    InRoom = case Where of
                 chat -> Data;
                 {Room, Nick} -> Data#{<<"room">> => jid:encode(jid:remove_resource(Room)),
                                       <<"nick">> => Nick}
             end,
    Told = case KeepText of
               true -> InRoom#{<<"text">> => xmpp:get_text(Bodies)};
               false -> InRoom
           end,
    catch mod_event_bus:publish_event(Host, Type, Told),
    ok.

%% <block xmlns='urn:xmpp:blocking'><item jid='...'><report .../></item></block>,
%% read raw: the xmpp library's blocking item has no place for the report.
reports(#xmlel{name = <<"block">>} = Block) ->
    case fxml:get_tag_attr_s(<<"xmlns">>, Block) of
        ?BLOCKING ->
            [{fxml:get_tag_attr_s(<<"jid">>, Item), Reason, Text}
             || #xmlel{name = <<"item">>} = Item <- Block#xmlel.children,
                #xmlel{name = <<"report">>} = Report <- Item#xmlel.children,
                {Reason, Text} <- [reason(Report)], Reason =/= none];
        _ -> []
    end;
reports(_) ->
    [].

reason(Report) ->
    Text = fxml:get_subtag_cdata(Report, <<"text">>),
    case fxml:get_tag_attr_s(<<"xmlns">>, Report) of
        ?REPORTING_1 -> {fxml:get_tag_attr_s(<<"reason">>, Report), Text};
        ?REPORTING_0 ->
            case [Name || #xmlel{name = Name} <- Report#xmlel.children, Name /= <<"text">>] of
                [Name | _] -> {<<"urn:xmpp:reporting:", Name/binary>>, Text};
                [] -> {<<>>, Text}
            end;
        _ -> {none, Text}
    end.

report(Host, From, {Jid, Reason, Text}) ->
    Data = #{<<"from">> => jid:encode(jid:remove_resource(From)), <<"jid">> => Jid,
             <<"reason">> => Reason, <<"text">> => string:slice(Text, 0, 1000)},
    catch mod_event_bus:publish_event(Host, 'moderation.report', Data),
    ok.

%%%===================================================================
%%% Commands
%%%===================================================================
commands() ->
    [#ejabberd_commands{
        name = moderation_set_rules, tags = [admin],
        desc = "Replace a host's moderation rules (a JSON document)",
        module = ?MODULE, function = moderation_set_rules,
        args = [{host, binary}, {rules, binary}],
        args_example = [<<"example.org">>, ?EMPTY],
        args_desc = ["Virtual host", "{\"keep_text\": false, \"rules\": [...]}"],
        result = {result, string},
        result_example = "ok",
        result_desc = "ok, or what is wrong with the rules (nothing changed then)"},
     #ejabberd_commands{
        name = moderation_rules, tags = [admin],
        desc = "A host's moderation rules, as last set",
        module = ?MODULE, function = moderation_rules,
        args = [{host, binary}], args_example = [<<"example.org">>],
        args_desc = ["Virtual host"],
        result = {rules, string}}].

moderation_set_rules(Host, Json) ->
    case prepare(Json) of
        {ok, Set} ->
            File = gen_mod:get_module_opt(Host, ?MODULE, rules_file),
            Temporary = <<File/binary, ".new">>,
            ok = file:write_file(Temporary, Json),
            ok = file:rename(Temporary, File),
            persistent_term:put({?MODULE, Host}, Set),
            <<"ok">>;
        {error, Reason} ->
            Reason
    end.

%% Binaries for `string` results: both releases' API and ejabberdctl take them as
%% UTF-8 (a list would be read as Latin-1 characters).
moderation_rules(Host) ->
    #{document := Json} = rules(Host),
    Json.
