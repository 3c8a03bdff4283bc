%% The space shared files take on the card: the `upload_usage` command (the
%% console's dashboard shows it), and a floor of free space below which no
%% upload slot is handed out.
%%
%% mod_http_upload keeps files under its docroot, one directory per user, and
%% has neither: no command says how much is there (the directory is
%% ejabberd's own, mode 0700, so the console cannot look itself), and per-user
%% quotas (mod_http_upload_quota) can add up to more than the card holds. A
%% full card would stop the database, so an upload that would leave less than
%% `min_free_mb` free is refused with <resource-constraint/> (XEP-0363 §5).
-module(mod_upload_space).

-behaviour(gen_mod).

-include_lib("ejabberd/include/ejabberd_commands.hrl").

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1,
         mod_doc/0]).
-export([upload_usage/1, check_slot/6]).
-ifdef(TEST).
-export([usage/1, free_bytes/1, verdict/3]).
-endif.

start(Host, _Opts) ->
    ejabberd_hooks:add(http_upload_slot_request, Host, ?MODULE, check_slot, 40),
    ejabberd_commands:register_commands(?MODULE, commands()).

%% ejabberd_commands stores a command with its definer set and deletes the exact
%% record it is given: unregistering commands() as they are (what ejabberd's own
%% modules do) leaves the command answering after the module is gone.
stop(Host) ->
    ejabberd_hooks:delete(http_upload_slot_request, Host, ?MODULE, check_slot, 40),
    case gen_mod:is_loaded_elsewhere(Host, ?MODULE) of
        false ->
            ejabberd_commands:unregister_commands(
              [C#ejabberd_commands{definer = ?MODULE} || C <- commands()]);
        true -> ok
    end.

reload(_Host, _NewOpts, _OldOpts) -> ok.
depends(_Host, _Opts) -> [{mod_http_upload, hard}].
mod_opt_type(min_free_mb) -> econf:non_neg_int().
mod_options(_Host) -> [{min_free_mb, 1024}].
mod_doc() ->
    #{desc => <<"The upload_usage command, and a floor of free space for "
                "HTTP file upload.">>,
      opts => [{min_free_mb,
                #{value => "Number",
                  desc => <<"Refuse an upload slot that would leave less "
                            "than this many MiB free where files are kept.">>}}]}.

commands() ->
    [#ejabberd_commands{
        name = upload_usage, tags = [stats],
        desc = "Bytes and files kept by HTTP file upload for a host",
        module = ?MODULE, function = upload_usage,
        args = [{host, binary}], args_example = [<<"example.org">>],
        args_desc = ["Virtual host"],
        result = {usage, {tuple, [{bytes, integer}, {files, integer}]}},
        result_example = {1048576, 3},
        result_desc = "Bytes and files under the upload directory"}].

%% 0 and 0 for a host without file upload, or before the first file.
upload_usage(Host) ->
    case gen_mod:is_loaded(Host, mod_http_upload) of
        true -> usage(docroot(Host));
        false -> {0, 0}
    end.

%% The http_upload_slot_request hook: runs before mod_http_upload_quota's
%% (50), which would otherwise delete a user's old files for a slot that is
%% then refused.
check_slot(allow, ServerHost, _JID, _UserDir, Size, Lang) ->
    Floor = gen_mod:get_module_opt(ServerHost, ?MODULE, min_free_mb) * 1024 * 1024,
    case verdict(free_bytes(docroot(ServerHost)), Size, Floor) of
        allow -> allow;
        full ->
            logger:warning("Refusing an upload slot of ~B bytes on ~ts: the card "
                           "keeps ~B MiB free (min_free_mb)",
                           [Size, ServerHost, Floor div (1024 * 1024)]),
            xmpp:err_resource_constraint(
              <<"The server is short of space for files; ask its owner.">>, Lang)
    end;
check_slot(Acc, _ServerHost, _JID, _UserDir, _Size, _Lang) -> Acc.

%% Unknown free space (df failed) does not stop uploads: the floor guards the
%% database, it is not a reason to break file sharing.
verdict(unknown, _Size, _Floor) -> allow;
verdict(Free, Size, Floor) when Free - Size >= Floor -> allow;
verdict(_Free, _Size, _Floor) -> full.

%% The docroot as mod_http_upload expands it (@HOME@, @HOST@).
docroot(Host) ->
    Root = str:strip(mod_http_upload_opt:docroot(Host), right, $/),
    mod_http_upload:expand_host(mod_http_upload:expand_home(Root), Host).

usage(Dir) ->
    filelib:fold_files(
      binary_to_list(iolist_to_binary(Dir)), "", true,
      fun(File, {Bytes, Files}) -> {Bytes + filelib:file_size(File), Files + 1} end,
      {0, 0}).

%% Free bytes on the file system holding Dir (or its nearest existing
%% parent: the docroot appears with the first upload), from df: Erlang has
%% no statvfs, and os_mon's disksup reports percentages every 30 minutes.
free_bytes(Dir) ->
    case existing(binary_to_list(iolist_to_binary(Dir))) of
        none -> unknown;
        Path -> df(Path)
    end.

existing("/") -> "/";
existing(Path) ->
    case filelib:is_dir(Path) of
        true -> Path;
        false -> existing(filename:dirname(Path))
    end.

df(Path) ->
    case os:find_executable("df") of
        false -> unknown;
        Df ->
            Port = open_port({spawn_executable, Df},
                             [{args, ["-Pk", "--", Path]}, exit_status,
                              stderr_to_stdout, binary]),
            parse_df(collect(Port, <<>>))
    end.

collect(Port, Out) ->
    receive
        {Port, {data, Data}} -> collect(Port, <<Out/binary, Data/binary>>);
        {Port, {exit_status, 0}} -> {ok, Out};
        {Port, {exit_status, _}} -> error
    after 5000 ->
        catch port_close(Port),
        error
    end.

%% POSIX df -P: a header, then "Filesystem 1024-blocks Used Available ...".
parse_df({ok, Out}) ->
    case binary:split(Out, <<"\n">>, [global, trim_all]) of
        [_Header, Line | _] ->
            case string:lexemes(Line, " ") of
                [_Fs, _Blocks, _Used, Available | _] ->
                    try binary_to_integer(Available) * 1024
                    catch error:badarg -> unknown
                    end;
                _ -> unknown
            end;
        _ -> unknown
    end;
parse_df(error) -> unknown.
