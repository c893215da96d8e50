-- Makes every request's URL unique (an ignored query parameter), so no answer comes from
-- Cuttle's response cache: this measures the path through the store.
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, wrk.path .. "&uncached=" .. counter)
end
