%% Bots: accounts whose messages go to the event bus while no app is signed in
%% as them, for the bot's webhook (or the console's assistant) to answer
%% through the console's API:
%%
%%   offline_message_hook, 40   a chat or normal message with a body, to a bot
%%                              with no session (before mod_mam at 49,
%%                              mod_offline at 50 and the bounce at 100)
%%
%% Such a message is published as a `bot.message` event with the routing key
%% bot.message.<bot>, its text always (it was written to the bot; never the
%% fallback text of an encrypted one), and taken: not stored offline, not
%% archived for the bot, not bounced. With an app signed in as the bot,
%% messages reach that app as any account's would. A message from one of the
%% host's bots to another is taken and not published: bots do not answer bots
%% (two could answer each other without end).
%%
%% The list of bots is the console's: it sets it with bots_set, and the list is
%% kept in bots_file for the next start.
-module(mod_bots).

-behaviour(gen_mod).

-include_lib("p1_xmpp/include/xmpp.hrl").
-include_lib("ejabberd/include/ejabberd_commands.hrl").

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1,
         mod_doc/0]).
-export([offline_message/1]).
-export([bots_set/2, bots_list/1]).
-ifdef(TEST).
-export([parse/1, event/1, taken/2]).
-endif.

-define(EMPTY, <<"{\"bots\":[]}">>).
%% A bot's name is also a word of its routing key: no dots, nothing to escape.
-define(NAME, <<"^[a-z0-9][a-z0-9_-]{0,31}$">>).

start(Host, Opts) ->
    load(Host, gen_mod:get_opt(bots_file, Opts)),
    ejabberd_hooks:add(offline_message_hook, Host, ?MODULE, offline_message, 40),
    ejabberd_commands:register_commands(?MODULE, commands()).

%% See mod_upload_space: commands are unregistered with their definer set.
stop(Host) ->
    ejabberd_hooks:delete(offline_message_hook, Host, ?MODULE, offline_message, 40),
    _ = persistent_term:erase({?MODULE, Host}),
    case gen_mod:is_loaded_elsewhere(Host, ?MODULE) of
        false ->
            ejabberd_commands:unregister_commands(
              [C#ejabberd_commands{definer = ?MODULE} || C <- commands()]);
        true -> ok
    end.

reload(Host, NewOpts, _OldOpts) ->
    load(Host, gen_mod:get_opt(bots_file, NewOpts)).

%% The publisher is mod_event_bus's; without it a bot's messages are stored
%% offline like anyone's (offline_message/1 checks), never lost.
depends(_Host, _Opts) -> [{mod_event_bus, soft}].

mod_opt_type(bots_file) -> econf:binary("^/").

mod_options(_Host) ->
    [{bots_file, <<"/var/lib/ejabberd/bots.json">>}].

mod_doc() ->
    #{desc => <<"Sends the messages of bot accounts without a session to the event bus.">>,
      opts => [{bots_file, #{value => "Path",
                             desc => <<"Where the console's list of bots is kept.">>}}]}.

%%%===================================================================
%%% The list
%%%===================================================================
%% The list as it was last set; none (and why, in the log) if the file cannot
%% be read: the accounts then keep their messages offline like anyone's.
load(Host, File) ->
    Loaded = case file:read_file(File) of
                 {ok, Json} -> parse(Json);
                 {error, enoent} -> parse(?EMPTY);
                 {error, Why} -> {error, iolist_to_binary(file:format_error(Why))}
             end,
    case Loaded of
        {ok, Bots} ->
            persistent_term:put({?MODULE, Host}, Bots);
        {error, Reason} ->
            logger:error("Bots in ~ts not loaded (~ts): none answer", [File, Reason]),
            persistent_term:put({?MODULE, Host}, #{})
    end.

%% {"bots": ["assistant", "helpdesk"]} as a set, or what is wrong with it.
parse(Json) ->
    try mod_event_bus:decode(Json) of
        #{<<"bots">> := Names} when is_list(Names) ->
            case [Name || Name <- Names, not valid(Name)] of
                [] -> {ok, maps:from_keys(Names, true)};
                [Bad | _] -> {error, iolist_to_binary(
                                       io_lib:format("~0p is not a bot's name (a to z, 0 to 9, "
                                                     "_ and -, at most 32)", [Bad]))}
            end;
        _ -> {error, <<"not a list of bots">>}
    catch _:_ -> {error, <<"not JSON">>}
    end.

valid(Name) when is_binary(Name) ->
    re:run(Name, ?NAME, [{capture, none}]) =:= match;
valid(_) ->
    false.

bots(Host) ->
    persistent_term:get({?MODULE, Host}, #{}).

%%%===================================================================
%%% Hook
%%%===================================================================
offline_message({_, #message{type = Type, body = [_ | _], to = #jid{lserver = Host}} = Pkt} = Acc)
  when Type == chat; Type == normal ->
    case taken(Pkt, bots(Host)) of
        false ->
            Acc;
        from_bot ->
            {stop, {bot, Pkt}};
        true ->
            case gen_mod:is_loaded(Host, mod_event_bus) of
                true ->
                    Bot = Pkt#message.to#jid.luser,
                    catch mod_event_bus:publish_event(Host, 'bot.message',
                                                      <<"bot.message.", Bot/binary>>, event(Pkt)),
                    {stop, {bot, Pkt}};
                false ->
                    Acc
            end
    end;
offline_message(Acc) ->
    Acc.

%% Whether the message is a bot's to take: true (published), from_bot (taken,
%% not published) or false (not to a bot).
taken(#message{from = From, to = To}, Bots) ->
    case is_map_key(To#jid.luser, Bots) of
        false -> false;
        true ->
            case From#jid.lserver =:= To#jid.lserver andalso is_map_key(From#jid.luser, Bots) of
                true -> from_bot;
                false -> true
            end
    end.

%% What the bot's webhook gets (docs/events.md, bot.message).
event(#message{from = From, to = To, id = Id, body = Bodies} = Pkt) ->
    Encryption = mod_event_bus:encryption(Pkt),
    #{<<"bot">> => To#jid.luser,
      <<"from">> => jid:encode(jid:remove_resource(From)),
      <<"to">> => jid:encode(jid:remove_resource(To)),
      <<"message_id">> => case Id of <<>> -> null; _ -> Id end,
      <<"text">> => case Encryption of null -> xmpp:get_text(Bodies); _ -> null end,
      <<"encryption">> => Encryption}.

%%%===================================================================
%%% Commands
%%%===================================================================
commands() ->
    [#ejabberd_commands{
        name = bots_set, tags = [admin],
        desc = "Replace a host's list of bots (a JSON document)",
        module = ?MODULE, function = bots_set,
        args = [{host, binary}, {bots, binary}],
        args_example = [<<"example.org">>, <<"{\"bots\":[\"assistant\"]}">>],
        args_desc = ["Virtual host", "{\"bots\": [names]}"],
        result = {result, string},
        result_example = "ok",
        result_desc = "ok, or what is wrong with the list (nothing changed then)"},
     #ejabberd_commands{
        name = bots_list, tags = [admin],
        desc = "A host's list of bots, as last set",
        module = ?MODULE, function = bots_list,
        args = [{host, binary}], args_example = [<<"example.org">>],
        args_desc = ["Virtual host"],
        result = {bots, string}}].

bots_set(Host, Json) ->
    case parse(Json) of
        {ok, Bots} ->
            File = gen_mod:get_module_opt(Host, ?MODULE, bots_file),
            Temporary = <<File/binary, ".new">>,
            ok = file:write_file(Temporary, Json),
            ok = file:rename(Temporary, File),
            persistent_term:put({?MODULE, Host}, Bots),
            <<"ok">>;
        {error, Reason} ->
            Reason
    end.

%% The names, sorted, as the console sends them.
bots_list(Host) ->
    Names = lists:sort(maps:keys(bots(Host))),
    iolist_to_binary([<<"{\"bots\":[">>,
                      lists:join(<<",">>, [[$", Name, $"] || Name <- Names]), <<"]}">>]).
