%% XEP-0156 discovery (/.well-known/host-meta) for any name the device is
%% reached by: mod_host_meta takes the HTTP Host header for the XMPP host and
%% crashes on any other ({module_not_loaded, mod_host_meta, <<"127.0.0.1">>},
%% an empty reply) when a client comes by address or by another name. Those
%% are answered with the device's own domain's links, which are the ones that
%% work.
-module(pi_im_host_meta).

-include_lib("ejabberd/include/ejabberd_http.hrl").

%% served/2: also which host pi_im_web_chat serves the web chat for.
-export([process/2, served/2]).

process(Path, #request{host = Host} = Request) ->
    Served = served(Host, ejabberd_option:hosts()),
    mod_host_meta:process(Path, Request#request{host = Served}).

%% A host the device serves is its own; any other name or address is the
%% first (on the appliance, the only) XMPP domain.
served(Host, [First | _] = Hosts) ->
    case lists:member(Host, Hosts) of
        true -> Host;
        false -> First
    end.
