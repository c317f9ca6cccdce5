-- Hybrid: a title word fused with the sound of a random track, under a tempo filter.
dofile(os.getenv("MOTIF_LOAD_DIR") .. "/common.lua")
request = function()
  local body = string.format(
    '{"q": "song %d", "like": [%d], "limit": 10, "filters": {"ranges": {"tempo_bpm": {"min": 80, "max": 140}}}}',
    track_id(), track_id())
  return wrk.format("POST", "/v1/search/hybrid", { ["content-type"] = "application/json" }, body)
end
