// Package examples bundles the example services and the example data that
// `ferry rehearse` uses when no --data is given.
package examples

import "embed"

// OverseerrData is examples/overseerr/data: Overseerr's config directory
// as a stopped container leaves it, every row in the -wal.
//
//go:embed overseerr/data/settings.json overseerr/data/db
var OverseerrData embed.FS

// OverseerrDataRoot is the config directory's path inside OverseerrData.
const OverseerrDataRoot = "overseerr/data"
