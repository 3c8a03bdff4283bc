%% The device's web chat on its web listener, by any name the device is
%% reached by: mod_http_fileserver serves the page and Converse's files from
%% its docroot but answers only the XMPP domain's Host header ("Host unknown"
%% by address or another name), so the request is passed on for the domain.
%% settings.json tells the page which domain its members' accounts are on.
%% Converse's files live under a path naming its version and are kept by
%% browsers for good; the page and its own files are asked again at every load
%% (304 while unchanged), so an updated device serves its new page at once.
-module(pi_im_web_chat).

-include_lib("ejabberd/include/ejabberd_http.hrl").

-export([process/2]).
-ifdef(TEST).
-export([settings/1, cache_control/2]).
-endif.

process([<<"settings.json">>], #request{method = Method})
  when Method == 'GET'; Method == 'HEAD' ->
    [Domain | _] = ejabberd_option:hosts(),
    {200,
     [{<<"Content-Type">>, <<"application/json">>},
      {<<"Cache-Control">>, <<"no-cache">>},
      {<<"X-Content-Type-Options">>, <<"nosniff">>}],
     settings(Domain)};
process(Path, #request{host = Host} = Request) ->
    Served = pi_im_host_meta:served(Host, ejabberd_option:hosts()),
    {Code, Headers, Body} =
        mod_http_fileserver:process(Path, Request#request{host = Served}),
    {Code, [{<<"Cache-Control">>, cache_control(Code, Path)} | Headers], Body}.

%% A file that is missing now may be there after an update: only a found one
%% is kept.
cache_control(Code, [<<"converse-", _/binary>> | _]) when Code == 200; Code == 304 ->
    <<"public, max-age=31536000, immutable">>;
cache_control(_, _) ->
    <<"no-cache">>.

%% The page's settings as JSON. A domain is a DNS name (ejabberd checked it),
%% so nothing in it needs escaping.
settings(Domain) ->
    <<"{\"domain\":\"", Domain/binary, "\"}">>.
