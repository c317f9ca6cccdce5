-- Baseline: the cheapest route (routing, JSON, one store round trip for the sequence).
dofile(os.getenv("MOTIF_LOAD_DIR") .. "/common.lua")
request = function()
  return wrk.format("GET", "/v1/health")
end
