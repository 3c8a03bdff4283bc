%% The moderation list as a matcher: words (whole words, any case) in one map
%% looked up token by token, patterns (PCRE, caseless, Unicode) compiled once.
%% A message matching a `block` rule is refused; what `mask` rules match is
%% replaced by as many asterisks as it has characters.
%%
%% Cost, for the common case (nothing matches):
%% - words: one pass over the text's bytes, one map lookup per word in it,
%%   whatever the number of word rules; a few microseconds for 200 bytes.
%% - patterns: a screen (see screen/2) runs first, and each pattern runs alone
%%   only when the screen matched. Patterns that start with a letter or digit
%%   cost about a microsecond each; the others are tried at every position.
%%
%% A pattern that backtracks without end gives up at ?MATCH_LIMIT steps: no
%% match, and no message waits on it. Only a match of some text counts
%% (notempty): a pattern that matches only empty text (\b, a lookahead) never
%% blocks.
-module(mod_moderation_rules).

-export([compile/1, check/2, empty/0]).
-ifdef(TEST).
-export([word_hits/2, unicode_hits/2]).
-endif.

-define(MATCH_LIMIT, {match_limit, 100000}).
%% How far a word of the text must be folded to meet the list's words.
-define(AS_IS, 0).
-define(LOWERCASE, 1).
-define(CASEFOLD, 2).
-define(PATTERN_OPTIONS, [unicode, ucp, caseless]).

-type action() :: block | mask.
-type rule() :: #{id := pos_integer(), kind := word | pattern, text := binary(),
                  action := action()}.
-type compiled() :: #{words := #{binary() => {pos_integer(), action()}},
                      patterns := [{pos_integer(), action(), re:mp()}],
                      screen := [re:mp()],
                      tokens := re:mp(),
                      word_char := re:mp()}.
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
    {ok, WordChar} = re:compile(<<"^\\w$">>, [unicode, ucp]),
    compile(Rules, #{words => #{}, patterns => [], tokens => Tokens, word_char => WordChar}).

compile([], Acc = #{patterns := Patterns}) ->
    InOrder = lists:reverse(Patterns),
    {ok, Acc#{patterns := [{Id, Action, MP} || {Id, Action, MP, _} <- InOrder],
              screen => screen(InOrder)}};
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
    case re:compile(Text, ?PATTERN_OPTIONS) of
        {ok, MP} ->
            case re:run(<<>>, MP, [{capture, none}]) of
                match ->
                    {error, Id, <<"it matches an empty text, so every message">>};
                nomatch ->
                    compile(Rest, Acc#{patterns := [{Id, Action, MP, Text} | Patterns]})
            end;
        {error, {Reason, At}} ->
            {error, Id, iolist_to_binary(io_lib:format("~s at character ~B", [Reason, At]))}
    end.

-spec check(binary(), compiled()) -> outcome().
check(_Text, #{words := Words, patterns := []}) when map_size(Words) =:= 0 ->
    pass;
check(Text, Compiled = #{patterns := Patterns, screen := Screen}) ->
    %% Where exactly each word is comes only for a mask.
    WordHits = case word_hits(Text, Compiled) of
                   invalid -> unicode_hits(Text, Compiled);
                   Hits -> Hits
               end,
    PatternHits = case screened(Text, Screen) of
                      nomatch -> [];
                      match -> [{Id, Action, MP} || {Id, Action, MP} <- Patterns,
                                                    re:run(Text, MP, [{capture, none}, notempty,
                                                                      ?MATCH_LIMIT]) =:= match]
                  end,
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

unicode_hits(_Text, #{words := Words}) when map_size(Words) =:= 0 ->
    [];
unicode_hits(Text, #{words := Words, tokens := Tokens}) ->
    [maps:get(Token, Words) || Token <- tokens(fold(Text), Tokens), is_map_key(Token, Words)].

%% The word rules a text hits, in one pass over its bytes; `invalid` if it is
%% not UTF-8. A word is a run of what \w (ucp) matches: letters, digits and _
%% in ASCII, and for any other character one run of a precompiled \w on it
%% (emoji, accents: once each). A word is folded as the list's words were,
%% only as far as it needs: not at all, lowercased (ASCII with a capital) or
%% by string:casefold (anything else).
word_hits(Text, #{words := Words, word_char := WordChar}) ->
    word_hits(Text, 0, 0, ?AS_IS, {Text, Words, WordChar}, []).

word_hits(<<C, Rest/binary>>, Start, At, Fold, Env, Hits)
  when C >= $a, C =< $z; C >= $0, C =< $9; C =:= $_ ->
    word_hits(Rest, Start, At + 1, Fold, Env, Hits);
word_hits(<<C, Rest/binary>>, Start, At, Fold, Env, Hits) when C >= $A, C =< $Z ->
    word_hits(Rest, Start, At + 1, max(Fold, ?LOWERCASE), Env, Hits);
word_hits(<<C, Rest/binary>>, Start, At, Fold, Env, Hits) when C < 128 ->
    word_hits(Rest, At + 1, At + 1, ?AS_IS, Env, word_hit(Start, At, Fold, Env, Hits));
word_hits(<<Char/utf8, Rest/binary>>, Start, At, Fold, Env = {_, _, WordChar}, Hits) ->
    Next = At + byte_size(<<Char/utf8>>),
    case re:run(<<Char/utf8>>, WordChar, [{capture, none}]) of
        match -> word_hits(Rest, Start, Next, ?CASEFOLD, Env, Hits);
        nomatch -> word_hits(Rest, Next, Next, ?AS_IS, Env, word_hit(Start, At, Fold, Env, Hits))
    end;
word_hits(<<_, _/binary>>, _, _, _, _, _) ->
    invalid;
word_hits(<<>>, Start, At, Fold, Env, Hits) ->
    word_hit(Start, At, Fold, Env, Hits).

word_hit(At, At, _, _, Hits) ->
    Hits;
word_hit(_, _, _, {_, Words, _}, Hits) when map_size(Words) =:= 0 ->
    Hits;
word_hit(Start, At, Fold, {Text, Words, _}, Hits) ->
    Part = binary:part(Text, Start, At - Start),
    Word = case Fold of
               ?AS_IS -> Part;
               ?LOWERCASE -> << <<(lower(C))>> || <<C>> <= Part >>;
               ?CASEFOLD -> fold(Part)
           end,
    case Words of
        #{Word := Hit} -> [Hit | Hits];
        _ -> Hits
    end.

lower(C) when C >= $A, C =< $Z -> C + 32;
lower(C) -> C.

%% What runs on every text for the patterns. PCRE here keeps no table of the
%% characters a match can start with: it skips ahead only to a pattern's one
%% first character, and otherwise tries every position. So each pattern is cut
%% into its top-level branches; branches that start with the same letter or
%% digit run as one alternation (which keeps that first character), the rest
%% as one more. A pattern whose meaning depends on the rest of it runs whole
%% and alone, and so does any group whose alternation does not compile.
screen(Patterns) ->
    {Alone, Grouped} =
        lists:foldl(
          fun({_, _, MP, Text}, {Alone, Groups}) ->
                  case combinable(Text) of
                      true ->
                          {Alone, lists:foldl(fun({Key, Unit, UnitMP}, Acc) ->
                                                      maps:update_with(Key, fun(L) -> [{Unit, UnitMP} | L] end,
                                                                       [{Unit, UnitMP}], Acc)
                                              end, Groups, units(Text, MP))};
                      false ->
                          {[MP | Alone], Groups}
                  end
          end, {[], #{}}, Patterns),
    lists:reverse(Alone)
        ++ lists:append([alternation(lists:reverse(Members))
                         || {_, Members} <- lists:sort(maps:to_list(Grouped))]).

%% A combinable pattern as the units the screen groups: {Key, Source, MP},
%% keyed by the first character PCRE can skip to, or `other`.
units(Text, MP) ->
    case branches(Text) of
        unknown ->
            [{other, Text, MP}];
        Branches ->
            case lists:append([leading_class(Branch) || Branch <- Branches]) of
                [Text] ->
                    exact_case({first(Text), Text, MP});
                Units ->
                    Compiled = [{Unit, re:compile(Unit, ?PATTERN_OPTIONS)} || Unit <- Units],
                    case [ok || {_, {ok, _}} <- Compiled] of
                        All when length(All) =:= length(Units) ->
                            lists:append([exact_case({first(Unit), Unit, UnitMP})
                                          || {Unit, {ok, UnitMP}} <- Compiled]);
                        _ ->
                            [{other, Text, MP}]
                    end
            end
    end.

%% A caseless s or k has a third form in Unicode (the long s, the Kelvin sign),
%% and PCRE then has no first character to skip to: such a unit becomes three,
%% each starting with one of the forms in exactly that case.
exact_case({First, <<_, Rest/binary>>, _} = Unit) when First =:= $s; First =:= $k ->
    Forms = case First of
                $s -> [$s, $S, 16#17F];
                $k -> [$k, $K, 16#212A]
            end,
    Exact = [{Form, re:compile(<<"(?-i:", Form/utf8, ")", Rest/binary>>, ?PATTERN_OPTIONS)}
             || Form <- Forms],
    case [ok || {_, {ok, _}} <- Exact] =:= [ok, ok, ok] of
        true -> [{{exact, Form}, <<"(?-i:", Form/utf8, ")", Rest/binary>>, MP}
                 || {Form, {ok, MP}} <- Exact];
        false -> [Unit]
    end;
exact_case(Unit) ->
    [Unit].

%% A branch that starts with a class of a few letters or digits, taken once
%% ([s5]pam, not [s5]+pam), as one branch per member (spam|5pam), each with a
%% first character.
leading_class(<<"[", Rest/binary>> = Branch) ->
    case binary:split(Rest, <<"]">>) of
        [Members, After] when byte_size(Members) >= 1, byte_size(Members) =< 8 ->
            Plain = lists:all(fun(C) -> C >= $a andalso C =< $z orelse C >= $A andalso C =< $Z
                                            orelse C >= $0 andalso C =< $9
                              end, binary_to_list(Members)),
            Once = case After of
                       <<Q, _/binary>> when Q =:= $?; Q =:= $*; Q =:= $+; Q =:= ${ -> false;
                       _ -> true
                   end,
            case Plain andalso Once of
                true -> [<<C, After/binary>> || C <- lists:usort(binary_to_list(Members))];
                false -> [Branch]
            end;
        _ ->
            [Branch]
    end;
leading_class(Branch) ->
    [Branch].

alternation([{_, MP}]) ->
    [MP];
alternation(Members) ->
    %% Each in a group of its own, so its inline options stay its own; \E
    %% closes a \Q it left open (and is ignored otherwise).
    Source = lists:join(<<"|">>, [[<<"(?:">>, Text, <<"\\E)">>] || {Text, _} <- Members]),
    case re:compile(Source, ?PATTERN_OPTIONS) of
        {ok, MP} -> [MP];
        {error, _} -> [MP || {_, MP} <- Members]
    end.

%% The letter or digit (lowercase) a branch must start with, or `other`: one
%% made optional (a?, a*, a{0,2}) is not a start.
first(<<C, Rest/binary>>) when C >= $a, C =< $z; C >= $A, C =< $Z; C >= $0, C =< $9 ->
    case Rest of
        <<Q, _/binary>> when Q =:= $?; Q =:= $*; Q =:= ${ -> other;
        _ -> lower(C)
    end;
first(_) ->
    other.

%% The pattern's top-level branches (the |s outside any group, class or \Q..\E
%% span), or `unknown` when an option set at the top level (which would reach
%% the branches after it) or a comment (whose text the walk cannot follow) is
%% there.
branches(Text) ->
    case re:run(Text, <<"\\(\\?[a-zA-Z^-]*\\)|\\(\\?#">>, [{capture, none}]) of
        match -> unknown;
        nomatch -> branches(Text, 0, 0, 0, Text, [])
    end.

branches(<<"\\Q", Rest/binary>>, Depth, Start, At, Text, Acc) ->
    Skip = case binary:match(Rest, <<"\\E">>) of
               nomatch -> byte_size(Rest);
               {End, 2} -> End + 2
           end,
    branches(binary:part(Rest, Skip, byte_size(Rest) - Skip), Depth, Start, At + 2 + Skip,
             Text, Acc);
branches(<<"\\", _, Rest/binary>>, Depth, Start, At, Text, Acc) ->
    branches(Rest, Depth, Start, At + 2, Text, Acc);
branches(<<"[", Rest/binary>>, Depth, Start, At, Text, Acc) ->
    case class_end(Rest) of
        unknown -> unknown;
        Skip -> branches(binary:part(Rest, Skip, byte_size(Rest) - Skip), Depth, Start,
                         At + 1 + Skip, Text, Acc)
    end;
branches(<<"(", Rest/binary>>, Depth, Start, At, Text, Acc) ->
    branches(Rest, Depth + 1, Start, At + 1, Text, Acc);
branches(<<")", Rest/binary>>, Depth, Start, At, Text, Acc) ->
    branches(Rest, Depth - 1, Start, At + 1, Text, Acc);
branches(<<"|", Rest/binary>>, 0, Start, At, Text, Acc) ->
    branches(Rest, 0, At + 1, At + 1, Text, [binary:part(Text, Start, At - Start) | Acc]);
branches(<<_, Rest/binary>>, Depth, Start, At, Text, Acc) ->
    branches(Rest, Depth, Start, At + 1, Text, Acc);
branches(<<>>, 0, Start, At, Text, Acc) ->
    lists:reverse([binary:part(Text, Start, At - Start) | Acc]);
branches(<<>>, _, _, _, _, _) ->
    unknown.

%% Bytes up to and past the ] closing a class (after its [): a ] first (or
%% after ^) is a member, \ escapes, and [:alpha:] is one member.
class_end(Class) ->
    Lead = case Class of
               <<"^]", _/binary>> -> 2;
               <<"]", _/binary>> -> 1;
               <<"^", _/binary>> -> 1;
               _ -> 0
           end,
    class_end(binary:part(Class, Lead, byte_size(Class) - Lead), Lead).

class_end(<<"]", _/binary>>, At) ->
    At + 1;
class_end(<<"\\", _, Rest/binary>>, At) ->
    class_end(Rest, At + 2);
class_end(<<"[:", Rest/binary>> = Here, At) ->
    case binary:match(Rest, <<":]">>) of
        {End, 2} -> class_end(binary:part(Rest, End + 2, byte_size(Rest) - End - 2),
                              At + 2 + End + 2);
        nomatch -> class_end(binary:part(Here, 1, byte_size(Here) - 1), At + 1)
    end;
class_end(<<_, Rest/binary>>, At) ->
    class_end(Rest, At + 1);
class_end(<<>>, _) ->
    unknown.

%% Group numbers (\1, \g, \k, (?1), (?R), conditions), backtracking verbs
%% ((*COMMIT) would stop the other branches), \K, callouts and the extended
%% mode's comments to the end of a line mean something else inside another
%% pattern: such a pattern (or one that only looks like it) is not combined.
combinable(Text) ->
    re:run(Text, <<"\\\\[0-9gkK]|\\(\\?[0-9+RP(&C]|\\(\\*|\\(\\?[a-zA-Z^]*x">>,
           [{capture, none}]) =:= nomatch.

%% nomatch when no pattern can match the text; match when one did, or an
%% alternation gave up at the match limit (then each pattern is run alone).
screened(_Text, []) ->
    nomatch;
screened(Text, [MP | Rest]) ->
    case re:run(Text, MP, [{capture, none}, notempty, ?MATCH_LIMIT, report_errors]) of
        nomatch -> screened(Text, Rest);
        _ -> match
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
