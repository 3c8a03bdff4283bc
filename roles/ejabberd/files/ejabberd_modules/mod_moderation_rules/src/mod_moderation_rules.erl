%% The moderation list as a matcher: words (whole words, any case) in one map
%% looked up token by token, patterns (PCRE, caseless, Unicode) compiled once.
%% A message matching a `block` rule is refused; what `mask` rules match is
%% replaced by as many asterisks as it has characters.
%%
%% Cost: one fold and one scan of the text for its words, one map lookup per
%% word whatever the number of word rules, and one regex run per pattern rule
%% (which is why the console allows far fewer patterns than words). A pattern
%% that backtracks without end gives up at ?MATCH_LIMIT steps: no match, and
%% no message waits on it. Only a match of some text counts (notempty): a
%% pattern that matches only empty text (\b, a lookahead) never blocks.
-module(mod_moderation_rules).

-export([compile/1, check/2, empty/0]).

-define(MATCH_LIMIT, {match_limit, 100000}).

-type action() :: block | mask.
-type rule() :: #{id := pos_integer(), kind := word | pattern, text := binary(),
                  action := action()}.
-type compiled() :: #{words := #{binary() => {pos_integer(), action()}},
                      patterns := [{pos_integer(), action(), re:mp()}],
                      tokens := re:mp()}.
-type outcome() :: pass | {block, pos_integer()} | {mask, binary(), [pos_integer()]}.
-export_type([rule/0, compiled/0, outcome/0]).

-spec empty() -> compiled().
empty() ->
    {ok, Compiled} = compile([]),
    Compiled.

%% The rules as a matcher, or the first rule that cannot be one and why.
-spec compile([rule()]) -> {ok, compiled()} | {error, pos_integer(), binary()}.
compile(Rules) ->
    {ok, Tokens} = re:compile(<<"\\w+">>, [unicode, ucp]),
    compile(Rules, #{words => #{}, patterns => [], tokens => Tokens}).

compile([], Acc = #{patterns := Patterns}) ->
    {ok, Acc#{patterns := lists:reverse(Patterns)}};
compile([#{id := Id, kind := word, text := Text, action := Action} | Rest],
        Acc = #{words := Words, tokens := Tokens}) ->
    Key = fold(Text),
    %% Words are matched token by token: a word that is not one token never matches.
    case tokens(Key, Tokens) of
        [Key] ->
            %% A word said twice keeps its first rule, a block over a mask.
            Kept = case maps:find(Key, Words) of
                       {ok, {_, block} = First} -> First;
                       {ok, First} when Action =:= mask -> First;
                       _ -> {Id, Action}
                   end,
            compile(Rest, Acc#{words := Words#{Key => Kept}});
        _ ->
            {error, Id, <<"a word is letters and digits only (a phrase is a pattern)">>}
    end;
compile([#{id := Id, kind := pattern, text := Text, action := Action} | Rest],
        Acc = #{patterns := Patterns}) ->
    case re:compile(Text, [unicode, ucp, caseless]) of
        {ok, MP} ->
            case re:run(<<>>, MP, [{capture, none}]) of
                match ->
                    {error, Id, <<"it matches an empty text, so every message">>};
                nomatch ->
                    compile(Rest, Acc#{patterns := [{Id, Action, MP} | Patterns]})
            end;
        {error, {Reason, At}} ->
            {error, Id, iolist_to_binary(io_lib:format("~s at character ~B", [Reason, At]))}
    end.

-spec check(binary(), compiled()) -> outcome().
check(_Text, #{words := Words, patterns := []}) when map_size(Words) =:= 0 ->
    pass;
check(Text, Compiled = #{words := Words, patterns := Patterns, tokens := Tokens}) ->
    %% The common case, nothing matches, costs one fold of the whole text and one
    %% scan of it; where exactly each word is comes only for a mask.
    WordHits = case map_size(Words) of
                   0 -> [];
                   _ -> [maps:get(Token, Words) || Token <- tokens(fold(Text), Tokens),
                                                   is_map_key(Token, Words)]
               end,
    PatternHits = [{Id, Action, MP} || {Id, Action, MP} <- Patterns,
                                        re:run(Text, MP, [{capture, none}, notempty, ?MATCH_LIMIT]) =:= match],
    Blocks = [Id || {Id, block} <- WordHits] ++ [Id || {Id, block, _} <- PatternHits],
    if
        Blocks =/= [] -> {block, lists:min(Blocks)};
        WordHits =:= [], PatternHits =:= [] -> pass;
        true ->
            Ranges = word_ranges(Text, Compiled)
                ++ [{At, Len} || {_, _, MP} <- PatternHits,
                                 {match, Found} <- [re:run(Text, MP, [global, notempty,
                                                                     {capture, first, index},
                                                                     ?MATCH_LIMIT])],
                                 [{At, Len}] <- Found],
            {mask, mask(Text, Ranges),
             lists:usort([Id || {Id, _} <- WordHits] ++ [Id || {Id, _, _} <- PatternHits])}
    end.

tokens(Text, Tokens) ->
    case re:run(Text, Tokens, [global, {capture, first, binary}]) of
        nomatch -> [];
        {match, Found} -> [Token || [Token] <- Found]
    end.

%% Where, in the text as sent, each masked word is (byte offsets).
word_ranges(Text, #{words := Words, tokens := Tokens}) ->
    case re:run(Text, Tokens, [global, {capture, first, index}]) of
        nomatch -> [];
        {match, Found} -> [{At, Len} || [{At, Len}] <- Found,
                                        is_map_key(fold(binary:part(Text, At, Len)), Words)]
    end.

fold(Text) ->
    unicode:characters_to_binary(string:casefold(Text)).

%% Each range's characters as asterisks (overlapping ranges merged), byte
%% offsets from re:run.
mask(Text, Ranges) ->
    mask(Text, lists:sort(Ranges), 0, []).

mask(Text, [], From, Acc) ->
    iolist_to_binary(lists:reverse([binary:part(Text, From, byte_size(Text) - From) | Acc]));
mask(Text, [{At, Len} | Rest], From, Acc) when At + Len =< From ->
    mask(Text, Rest, From, Acc);
mask(Text, [{At, Len} | Rest], From, Acc) ->
    Start = max(At, From),
    Part = binary:part(Text, Start, At + Len - Start),
    Stars = binary:copy(<<"*">>, string:length(Part)),
    mask(Text, Rest, At + Len, [Stars, binary:part(Text, From, Start - From) | Acc]).
