-- A 50-track playlist: seeds, a BPM range, artist spacing, smooth ordering.
dofile(os.getenv("MOTIF_LOAD_DIR") .. "/common.lua")
request = function()
  local body = string.format(
    '{"seeds": [%d], "size": 50, "filters": {"ranges": {"tempo_bpm": {"min": 90, "max": 130}}}, "artist_gap": 3, "order": "smooth", "seed": %d}',
    track_id(), math.random(1, 1000))
  return wrk.format("POST", "/v1/playlists", { ["content-type"] = "application/json" }, body)
end
