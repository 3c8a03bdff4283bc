-module(mod_moderation_rules_tests).

-include_lib("eunit/include/eunit.hrl").

rules() ->
    [#{id => 1, kind => word, text => <<"darn">>, action => mask},
     #{id => 2, kind => word, text => <<"Spamlink"/utf8>>, action => block},
     #{id => 3, kind => pattern, text => <<"buy\\s+now">>, action => block},
     #{id => 4, kind => pattern, text => <<"f[o0]+bar">>, action => mask},
     #{id => 5, kind => word, text => <<"Straße"/utf8>>, action => mask}].

compiled() ->
    {ok, C} = mod_moderation_rules:compile(rules()),
    C.

clean_text_passes_test() ->
    ?assertEqual(pass, mod_moderation_rules:check(<<"hello there, darning socks">>, compiled())).

a_word_is_masked_whole_and_in_any_case_test() ->
    ?assertEqual({mask, <<"oh **** it, **** again">>, [1]},
                 mod_moderation_rules:check(<<"oh DARN it, darn again">>, compiled())).

a_block_rule_wins_over_masks_test() ->
    ?assertEqual({block, 2},
                 mod_moderation_rules:check(<<"darn, see SPAMLINK">>, compiled())),
    ?assertEqual({block, 3},
                 mod_moderation_rules:check(<<"Buy   now!">>, compiled())).

patterns_mask_what_they_match_test() ->
    ?assertEqual({mask, <<"a ****** and a ****">>, [1, 4]},
                 mod_moderation_rules:check(<<"a fo0bar and a dArN">>, compiled())).

unicode_words_fold_and_mask_by_character_test() ->
    ?assertEqual({mask, <<"die ******* ist lang"/utf8>>, [5]},
                 mod_moderation_rules:check(<<"die STRASSE ist lang"/utf8>>, compiled())),
    ?assertEqual({mask, <<"die ****** hier"/utf8>>, [5]},
                 mod_moderation_rules:check(<<"die straße hier"/utf8>>, compiled())).

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
                 mod_moderation_rules:check(<<"say word500 now">>, C)),
    ?assertEqual({block, 1003}, mod_moderation_rules:check(<<"a pat3xxx">>, C)).

a_word_that_is_not_one_token_is_refused_test() ->
    ?assertMatch({error, 8, <<"a word is letters", _/binary>>},
                 mod_moderation_rules:compile(
                   [#{id => 8, kind => word, text => <<"two words">>, action => block}])),
    ?assertMatch({error, 9, _},
                 mod_moderation_rules:compile(
                   [#{id => 9, kind => word, text => <<"">>, action => block}])).

no_rules_pass_everything_test() ->
    ?assertEqual(pass, mod_moderation_rules:check(<<"anything">>, mod_moderation_rules:empty())).

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
    ?assertEqual(pass, mod_moderation_rules:check(Text, C)).

only_a_match_of_some_text_counts_test() ->
    {ok, C} = mod_moderation_rules:compile(
                [#{id => 12, kind => pattern, text => <<"\\b">>, action => block}]),
    ?assertEqual(pass, mod_moderation_rules:check(<<"every word has a boundary">>, C)).
