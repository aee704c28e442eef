"""Demo data for Qujiang: the synthetic forest grid and the simulated detection stream.

demo_grid  `firewatch grid build`: about 1 km cells clipped to a district boundary
hierarchy  the grid's synthetic townships, villages and teams, and its risk classes
frame      the equirectangular km frame both use
world      the stream's world: grid, sensors, camera towers, a static heat source
scenario   fires and background noise: where and when, kept apart from each other
placement  where each fire goes: the first of its seeded tries that meets the rules
tries      a fire's tries, drawn one by one or worked out many at once (draws: from the
           generator's raw words, the numbers a loop of scalar draws would get)
signals    what fires and noise look like to sensors, cameras and satellites
records    the camera and satellite records, kept in columns and written many at once
sensors    the bulk of normal sensor readings (numpy arrays) and their fast formatting
columns    JSON lines assembled from small tables of text pieces
transport  arrival order: missing ids, delays, late records, duplicates, malformed lines
summary    the stream's ground truth
timefmt    fast RFC 3339 timestamps in a fixed UTC offset

`firewatch.simulate` puts the stream together.
"""
