-- More like this for a random track.
dofile(os.getenv("MOTIF_LOAD_DIR") .. "/common.lua")
request = function()
  return wrk.format("GET", "/v1/tracks/" .. track_id() .. "/similar?limit=10")
end
