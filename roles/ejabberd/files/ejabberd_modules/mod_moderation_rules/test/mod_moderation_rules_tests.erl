-module(mod_moderation_rules_tests).

-include_lib("eunit/include/eunit.hrl").

rules() ->
    [#{id => 1, kind => word, text => <<"darn">>, action => mask},
     #{id => 2, kind => word, text => <<"Spamlink"/utf8>>, action => block},
     #{id => 3, kind => pattern, text => <<"buy\\s+now">>, action => block},
     #{id => 4, kind => pattern, text => <<"f[o0]+bar">>, action => mask},
     #{id => 5, kind => word, text => <<"Straße"/utf8>>, action => mask}].

%% The outcome for an ASCII text, asserted the same with a word past ASCII added (which
%% no rule names): its words are then folded by string:casefold, not byte by byte.
both_ways(Text, C) ->
    Outcome = mod_moderation_rules:check(Text, C),
    Unicode = <<Text/binary, " ", "\x{e9}t\x{e9}"/utf8>>,
    Expected = case Outcome of
                   {mask, Masked, Ids} -> {mask, <<Masked/binary, " ", "\x{e9}t\x{e9}"/utf8>>, Ids};
                   Other -> Other
               end,
    ?assertEqual(Expected, mod_moderation_rules:check(Unicode, C)),
    Outcome.

%% How many runs the patterns' screen makes on every text.
screens(C) ->
    length(maps:get(screen, C)).

compiled() ->
    {ok, C} = mod_moderation_rules:compile(rules()),
    C.

clean_text_passes_test() ->
    ?assertEqual(pass, both_ways(<<"hello there, darning socks">>, compiled())).

a_word_is_masked_whole_and_in_any_case_test() ->
    ?assertEqual({mask, <<"oh **** it, **** again">>, [1]},
                 both_ways(<<"oh DARN it, darn again">>, compiled())).

a_block_rule_wins_over_masks_test() ->
    ?assertEqual({block, 2},
                 both_ways(<<"darn, see SPAMLINK">>, compiled())),
    ?assertEqual({block, 3},
                 both_ways(<<"Buy   now!">>, compiled())).

patterns_mask_what_they_match_test() ->
    ?assertEqual({mask, <<"a ****** and a ****">>, [1, 4]},
                 both_ways(<<"a fo0bar and a dArN">>, compiled())).

unicode_words_fold_and_mask_by_character_test() ->
    ?assertEqual({mask, <<"die ******* ist lang"/utf8>>, [5]},
                 both_ways(<<"die STRASSE ist lang"/utf8>>, compiled())),
    ?assertEqual({mask, <<"die ****** hier"/utf8>>, [5]},
                 both_ways(<<"die straße hier"/utf8>>, compiled())).

a_pattern_that_is_not_a_regex_names_its_rule_test() ->
    ?assertMatch({error, 7, <<"missing", _/binary>>},
                 mod_moderation_rules:compile(
                   rules() ++ [#{id => 7, kind => pattern, text => <<"(unclosed">>,
                                 action => block}])).

a_thousand_rules_cost_one_scan_test() ->
    Many = [#{id => N, kind => word, text => <<"word", (integer_to_binary(N))/binary>>,
              action => mask} || N <- lists:seq(1, 990)]
        ++ [#{id => 1000 + N, kind => pattern,
              text => <<"pat", (integer_to_binary(N))/binary, "x+">>, action => block}
            || N <- lists:seq(1, 10)],
    {ok, C} = mod_moderation_rules:compile(Many),
    ?assertEqual({mask, <<"say ******* now">>, [500]},
                 both_ways(<<"say word500 now">>, C)),
    ?assertEqual({block, 1003}, both_ways(<<"a pat3xxx">>, C)).

a_word_that_is_not_one_token_is_refused_test() ->
    ?assertMatch({error, 8, <<"a word is letters", _/binary>>},
                 mod_moderation_rules:compile(
                   [#{id => 8, kind => word, text => <<"two words">>, action => block}])),
    ?assertMatch({error, 9, _},
                 mod_moderation_rules:compile(
                   [#{id => 9, kind => word, text => <<"">>, action => block}])).

no_rules_pass_everything_test() ->
    ?assertEqual(pass, both_ways(<<"anything">>, mod_moderation_rules:empty())).

a_pattern_matching_nothing_at_all_is_refused_test() ->
    ?assertMatch({error, 10, <<"it matches an empty text", _/binary>>},
                 mod_moderation_rules:compile(
                   [#{id => 10, kind => pattern, text => <<"x*">>, action => block}])).

a_pattern_that_backtracks_without_end_gives_up_test() ->
    {ok, C} = mod_moderation_rules:compile(
                [#{id => 11, kind => pattern, text => <<"(a+)+$">>, action => block}]),
    Text = <<(binary:copy(<<"a">>, 40))/binary, "!">>,
    %% Without the limit this runs for hours (2^40 ways to split the a's), past EUnit's
    %% five seconds for a test.
    ?assertEqual(pass, both_ways(Text, C)).

only_a_match_of_some_text_counts_test() ->
    {ok, C} = mod_moderation_rules:compile(
                [#{id => 12, kind => pattern, text => <<"\\b">>, action => block}]),
    ?assertEqual(pass, both_ways(<<"every word has a boundary">>, C)).

%% An ASCII word is lowercased byte by byte, any other casefolded: a text finds the same
%% with a word past ASCII added (which no rule names).
the_ascii_path_finds_what_the_unicode_path_finds_test() ->
    {ok, C} = mod_moderation_rules:compile(
                rules() ++ [#{id => 13, kind => word, text => <<"Snake_Case9">>,
                              action => mask},
                            #{id => 14, kind => word, text => <<"42">>, action => mask}]),
    [both_ways(Text, C)
     || Text <- [<<"darn">>, <<"DaRn!">>, <<"xdarn darnx _darn darn_">>,
                 <<"snake_case9, 42 and 421">>, <<"(darn)(SNAKE_CASE9)">>, <<"spamLINK">>,
                 <<"">>, <<"   ">>, <<"tabs\tdarn\nnew\rline">>, <<"no rule here">>,
                 <<"buy\tnow">>, <<"f00bar">>]],
    ?assertEqual({mask, <<"a *********** and **">>, [13, 14]},
                 both_ways(<<"a SNAKE_case9 and 42">>, C)).

%% Patterns PCRE cannot skip ahead for run as one alternation; those with a first
%% letter, and those whose meaning depends on the rest of their pattern, run alone.
patterns_without_a_first_letter_run_as_one_test() ->
    Rules = [#{id => 20, kind => pattern, text => <<"[b-p]ad\\d">>, action => block},
             #{id => 21, kind => pattern, text => <<"\\Qa|b">>, action => block},
             #{id => 22, kind => pattern, text => <<"(?-i)X+y">>, action => block},
             #{id => 23, kind => pattern, text => <<"(\\w)\\1\\1">>, action => block},
             #{id => 24, kind => pattern, text => <<"offer\\s*now">>, action => block},
             #{id => 25, kind => pattern, text => <<".(?=q)">>, action => mask}],
    {ok, C} = mod_moderation_rules:compile(Rules),
    %% offer... alone, (\w)\1\1 alone, the other four as one.
    ?assertEqual(3, screens(C)),
    ?assertEqual({block, 20}, both_ways(<<"a PAD7 here">>, C)),
    %% \Q left open is closed at its pattern's end: the next pattern is still a pattern.
    ?assertEqual({block, 21}, both_ways(<<"take a|b">>, C)),
    %% An inline option stays in its own pattern: X must be a capital.
    ?assertEqual({block, 22}, both_ways(<<"XXy">>, C)),
    ?assertEqual(pass, both_ways(<<"xxy">>, C)),
    %% \1 is the first group of its own pattern.
    ?assertEqual({block, 23}, both_ways(<<"brr, zzz">>, C)),
    ?assertEqual({block, 24}, both_ways(<<"Offer  now">>, C)),
    ?assertEqual({mask, <<"ir*q and *q">>, [25]}, both_ways(<<"iraq and iq">>, C)),
    ?assertEqual(pass, both_ways(<<"bad idea, a | b, x y, zz">>, C)).

patterns_that_cannot_share_an_alternation_run_alone_test() ->
    %% Two groups of one name do not compile as one pattern.
    {ok, C} = mod_moderation_rules:compile(
                [#{id => 30, kind => pattern, text => <<"(?<n>[ab])x">>, action => block},
                 #{id => 31, kind => pattern, text => <<"(?<n>[cd])y">>, action => block}]),
    ?assertEqual(2, screens(C)),
    ?assertEqual({block, 31}, both_ways(<<"dy">>, C)).

%% One pattern that backtracks without end must not hide a match of another it shares
%% an alternation with: the alternation gives up, and each pattern is run alone.
a_runaway_pattern_does_not_hide_another_test() ->
    {ok, C} = mod_moderation_rules:compile(
                [#{id => 40, kind => pattern, text => <<"(a+)+$">>, action => block},
                 #{id => 41, kind => pattern, text => <<"[x-y]z">>, action => block}]),
    ?assertEqual(1, screens(C)),
    Text = <<(binary:copy(<<"a">>, 40))/binary, "! yz">>,
    ?assertEqual({block, 41}, both_ways(Text, C)).

%% A pattern's top-level branches are grouped by the letter they start with, so PCRE
%% keeps skipping ahead to it; a | inside a group, a class or \Q..\E is not a branch.
branches_that_start_alike_run_as_one_test() ->
    Rules = [#{id => 50, kind => pattern, text => <<"buy\\s+now|free\\s+money|[c]lick">>,
               action => block},
             #{id => 51, kind => pattern, text => <<"bad\\d|x(y|z)w">>, action => block},
             #{id => 52, kind => pattern, text => <<"[|a]b|cd">>, action => block},
             #{id => 53, kind => pattern, text => <<"q[[:digit:]|]z">>, action => block},
             #{id => 54, kind => pattern, text => <<"(?i)up|DOWN">>, action => block},
             #{id => 55, kind => pattern, text => <<"k\\Q|\\Em">>, action => block}],
    {ok, C} = mod_moderation_rules:compile(Rules),
    %% b: buy, bad; c: cd and [c]lick; f: free; k in its three forms; q; x; other: [|a]b,
    %% (?i)up|DOWN whole.
    ?assertEqual(9, screens(C)),
    [?assertEqual({block, Id}, both_ways(Text, C))
     || {Id, Text} <- [{50, <<"BUY now">>}, {50, <<"free money">>}, {50, <<"click">>},
                       {51, <<"bad7">>}, {51, <<"xzw">>}, {52, <<"|b">>}, {52, <<"ab">>},
                       {52, <<"cd">>}, {53, <<"q|z">>}, {53, <<"q5z">>}, {54, <<"Up">>},
                       {54, <<"down">>}, {55, <<"k|m">>}]],
    [?assertEqual(pass, both_ways(Text, C))
     || Text <- [<<"buy">>, <<"free">>, <<"xw">>, <<"xy">>, <<"b">>, <<"qz">>, <<"km">>,
                 <<"c d">>]].

%% The one-pass scan folds each word of a text where the regex path folds the whole text
%% and splits it after: both find the same words, whatever the script.
the_scan_finds_what_folding_the_whole_text_finds_test() ->
    Words = [<<"darn">>, <<"straße"/utf8>>, <<"café"/utf8>>, <<"fine">>, <<"kelvin">>,
             <<"σίσυφος"/utf8>>, <<"你好"/utf8>>, <<"under_score9">>, <<"cafe">>],
    {ok, C} = mod_moderation_rules:compile(
                [#{id => N, kind => word, text => W, action => mask}
                 || {N, W} <- lists:zip(lists:seq(1, length(Words)), Words)]),
    Texts = [<<"darn 🙂"/utf8>>, <<"🙂darn🙂DARN👍🏽"/utf8>>, <<"die STRASSE, die Straße"/utf8>>,
             <<"un CAFÉ, un café, un cafe\x{301}"/utf8>>, <<"ﬁne ﬁnE"/utf8>>,
             <<"\x{212A}elvin and KELVIN"/utf8>>, <<"ΣΊΣΥΦΟΣ σίσυφος"/utf8>>,
             <<"你好 darn，你好。"/utf8>>, <<"“darn” — darn… UNDER_SCORE9"/utf8>>,
             <<"👨‍👩‍👧 family darn"/utf8>>, <<"darn"/utf8>>, <<"plain ascii darn">>, <<>>],
    [begin
         Hits = mod_moderation_rules:word_hits(Text, C),
         ?assertEqual({Text, lists:sort(mod_moderation_rules:unicode_hits(Text, C))},
                      {Text, lists:sort(Hits)})
     end || Text <- Texts],
    ?assertEqual([{2, mask}, {2, mask}],
                 mod_moderation_rules:word_hits(<<"die STRASSE, die Straße"/utf8>>, C)),
    ?assertEqual([{5, mask}, {5, mask}],
                 mod_moderation_rules:word_hits(<<"\x{212A}elvin and KELVIN"/utf8>>, C)),
    ?assertEqual([{1, mask}], mod_moderation_rules:word_hits(<<"plain ascii darn">>, C)),
    ?assertEqual(invalid, mod_moderation_rules:word_hits(<<"darn ", 255>>, C)).

%% A branch led by a class of a few letters or digits, taken once, is one branch per
%% member, each with a first letter; a class taken more than once is not.
a_leading_class_of_letters_is_one_branch_each_test() ->
    {ok, C} = mod_moderation_rules:compile(
                [#{id => 70, kind => pattern, text => <<"[s5]p[a4]m|[bp]ad">>, action => block},
                 #{id => 71, kind => pattern, text => <<"[xy]{2}z">>, action => block},
                 #{id => 72, kind => pattern, text => <<"[^q]uit">>, action => block}]),
    %% 5, b, p, s in its three forms alone; [xy]{2}z and [^q]uit as one alternation.
    ?assertEqual(7, screens(C)),
    [?assertEqual({block, Id}, both_ways(Text, C))
     || {Id, Text} <- [{70, <<"SPAM">>}, {70, <<"5p4m">>}, {70, <<"bad">>}, {70, <<"pad">>},
                       {71, <<"xyz">>}, {71, <<"yyz">>}, {72, <<"suit">>}]],
    [?assertEqual(pass, both_ways(Text, C)) || Text <- [<<"xz">>, <<"quit">>, <<"sad">>]].

%% A caseless s or k also matches the long s and the Kelvin sign: the screen runs each
%% form in its exact case (s, S and ſ; k, K and the Kelvin sign).
s_and_k_keep_their_third_form_test() ->
    {ok, C} = mod_moderation_rules:compile(
                [#{id => 80, kind => pattern, text => <<"spam\\d|kit">>, action => block},
                 #{id => 81, kind => pattern, text => <<"Sale">>, action => block}]),
    ?assertEqual(6, screens(C)),
    [?assertEqual({block, Id}, both_ways(Text, C))
     || {Id, Text} <- [{80, <<"SPAM1">>}, {80, <<"Kit">>}, {81, <<"sALE">>}]],
    [?assertEqual({block, Id}, mod_moderation_rules:check(Text, C))
     || {Id, Text} <- [{80, <<"\x{17F}pam2"/utf8>>}, {80, <<"\x{212A}IT"/utf8>>},
                       {81, <<"\x{17F}ale"/utf8>>}]],
    ?assertEqual(pass, mod_moderation_rules:check(<<"\x{17F}pam \x{212A}t"/utf8>>, C)).
