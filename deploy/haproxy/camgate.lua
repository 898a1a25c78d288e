-- Camgate stream routing for HAProxy (2.6+, Lua 5.3): the sample fetch `lua.camgate_owner`
-- names the node that OWNS the stream in the request path, chosen exactly as the gateways
-- choose it (rendezvous hashing, gateway/src/cluster/), over the servers of a backend that
-- are currently UP. HAProxy server names must be the gateways' node names
-- (`cluster.node`). haproxy.cfg routes with `use-server <name> if { var(txn.owner) -m str <name> }`.
--
-- Owner of stream s = the member m with the highest
--   score(m, s) = splitmix64_finalize(fnv1a64(m ++ "\0" ++ s)), compared as unsigned 64-bit;
-- ties go to the lexicographically smaller name. Lua 5.3 integers are 64-bit and wrap on
-- overflow, `>>` is a logical shift and `math.ult` compares unsigned: the arithmetic is exact.
--
-- Also loadable without HAProxy (`lua5.3`): it then only defines the pure functions, which
-- gateway/tests/haproxy.rs checks against the shared test vectors.

local camgate = {}

local FNV_OFFSET = 0xcbf29ce484222325
local FNV_PRIME = 0x100000001b3

local function fnv1a64(h, s)
  for i = 1, #s do
    h = (h ~ string.byte(s, i)) * FNV_PRIME
  end
  return h
end

local function splitmix64_finalize(z)
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end

-- The score of member `name` for stream `stream`, as a (wrapped) 64-bit Lua integer.
function camgate.score(name, stream)
  local h = fnv1a64(FNV_OFFSET, name)
  h = (h ~ 0) * FNV_PRIME
  return splitmix64_finalize(fnv1a64(h, stream))
end

-- The owner of `stream` among `names` (a list of node names), or nil for an empty list.
function camgate.owner(names, stream)
  local best, best_score
  for _, name in ipairs(names) do
    local s = camgate.score(name, stream)
    if best == nil or math.ult(best_score, s) or (s == best_score and name < best) then
      best, best_score = name, s
    end
  end
  return best
end

-- The stream id of a URL path the owner should serve (WebSocket, MJPEG, snapshot, and the
-- admin's "Retry now", which restarts the camera where it runs), else nil.
function camgate.stream_of(path)
  return path:match("^/ws/streams/([^/]+)$")
    or path:match("^/api/streams/([^/]+)/mjpeg$")
    or path:match("^/api/streams/([^/]+)/snapshot%.jpg$")
    or path:match("^/api/streams/([^/]+)/retry$")
end

-- Whether HAProxy would send a request to this server now: its checks say UP (also while
-- going down, "UP 1/3"), or it has no checks. DOWN, MAINT, DRAIN and NOLB servers are out.
local function usable(server)
  local status = server:get_stats().status or ""
  return status:sub(1, 2) == "UP" or status == "no check"
end

if core ~= nil then
  -- lua.camgate_owner(<backend>): the owner of the request's stream among <backend>'s
  -- usable servers; no value (the rules do not match, `balance` decides) for other paths,
  -- an unknown backend or no usable server.
  core.register_fetches("camgate_owner", function(txn, backend_name)
    local stream = camgate.stream_of(txn.sf:path() or "")
    local backend = core.backends[backend_name]
    if stream == nil or backend == nil then
      return nil
    end
    local names = {}
    for name, server in pairs(backend.servers) do
      if usable(server) then
        names[#names + 1] = name
      end
    end
    return camgate.owner(names, stream)
  end)
end

return camgate
