%% The parts that need no running ejabberd: the walk over a directory laid
%% out as mod_http_upload lays it out (user/slot/file), free space from df,
%% and the floor's verdict. The command and the refusal against the live
%% server: molecule/default/tests/test_upload.py.
-module(mod_upload_space_tests).

-include_lib("eunit/include/eunit.hrl").

with_docroot(Test) ->
    Root = filename:join(os:getenv("TMPDIR", "/tmp"),
                         "upload-space-" ++ integer_to_list(erlang:unique_integer([positive]))),
    try Test(Root) after file:del_dir_r(Root) end.

write(Root, Path, Bytes) ->
    File = filename:join([Root | Path]),
    ok = filelib:ensure_dir(File),
    ok = file:write_file(File, binary:copy(<<"x">>, Bytes)).

missing_docroot_is_nothing_test() ->
    with_docroot(fun(Root) -> ?assertEqual({0, 0}, mod_upload_space:usage(Root)) end).

counts_every_file_of_every_user_test() ->
    with_docroot(fun(Root) ->
        write(Root, ["u1", "slot1", "photo.jpg"], 1000),
        write(Root, ["u1", "slot2", "clip.mp4"], 2500),
        write(Root, ["u2", "slot3", "notes.txt"], 7),
        ?assertEqual({3507, 3}, mod_upload_space:usage(Root)),
        ?assertEqual({3507, 3}, mod_upload_space:usage(list_to_binary(Root)))
    end).

free_space_of_a_docroot_not_made_yet_is_its_parents_test() ->
    with_docroot(fun(Root) ->
        Free = mod_upload_space:free_bytes(filename:join(Root, "not/yet")),
        ?assert(is_integer(Free) andalso Free > 0),
        Parent = mod_upload_space:free_bytes(filename:dirname(Root)),
        %% The same file system, read twice: within what was written meanwhile.
        ?assert(abs(Free - Parent) < 64 * 1024 * 1024)
    end).

the_floor_test_() ->
    MiB = 1024 * 1024,
    [?_assertEqual(allow, mod_upload_space:verdict(10 * MiB, 2 * MiB, 8 * MiB)),
     ?_assertEqual(full, mod_upload_space:verdict(10 * MiB, 2 * MiB + 1, 8 * MiB)),
     ?_assertEqual(full, mod_upload_space:verdict(MiB, 0, 8 * MiB)),
     ?_assertEqual(allow, mod_upload_space:verdict(unknown, 100 * MiB, 8 * MiB))].
