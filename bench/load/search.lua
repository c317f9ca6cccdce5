-- Text search with the query syntax and facet counts: an artist, a title, a key within
-- a tempo range.
dofile(os.getenv("MOTIF_LOAD_DIR") .. "/common.lua")
local keys = { "C", "D", "E", "F", "G", "A", "B" }
local i = 0
request = function()
  i = i + 1
  local q
  if i % 3 == 0 then
    q = "artist:%22artist%20" .. math.random(0, 49999) .. "%22"
  elseif i % 3 == 1 then
    q = "song%20" .. track_id()
  else
    q = "in%20" .. keys[math.random(1, #keys)] .. "%20bpm:118-122"
  end
  return wrk.format("GET", "/v1/search?limit=10&q=" .. q)
end
