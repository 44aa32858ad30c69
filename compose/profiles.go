package compose

import "strings"

// profile is what ferry knows about one app: where it keeps its state
// inside the container, and a version known to work with ferry.
//
// Paths are relative to configDir, so a compose file that moves the config
// root (Overseerr's CONFIG_DIRECTORY) moves them all.
type profile struct {
	app          string   // display name, used in notes
	repos        []string // image repositories without registry, tag or digest
	pin          string   // known-good tag, used when the compose tag floats
	configDir    string   // config root inside the container
	configDirEnv string   // environment variable that overrides configDir, if any
	port         int
	health       string // HTTP path answering 200 without auth
	databases    []profileDB
	configFiles  []string
	disposable   []string
}

type profileDB struct {
	name       string // also the replica path in the bucket
	file       string // relative to configDir
	userTables []string
}

// Paths below Plex's config root; the space in "Application Support" is
// why ferry admits spaces in container paths.
const plexData = "Library/Application Support/Plex Media Server"

var (
	seerrTables  = []string{"user", "user_settings", "media", "media_request", "season_request", "issue", "issue_comment"}
	seerrProfile = profile{
		configDir:    "/app/config",
		configDirEnv: "CONFIG_DIRECTORY",
		port:         5055,
		health:       "/api/v1/status",
		databases:    []profileDB{{name: "db", file: "db/db.sqlite3", userTables: seerrTables}},
		configFiles:  []string{"settings.json"},
		disposable:   []string{"logs", "cache"},
	}
	plexProfile = profile{
		app:       "Plex Media Server",
		configDir: "/config",
		port:      32400,
		health:    "/identity",
		// Two databases in one bucket, under two replica paths.
		databases: []profileDB{
			{name: "library", file: plexData + "/Plug-in Support/Databases/com.plexapp.plugins.library.db",
				userTables: []string{"accounts", "library_sections", "metadata_items", "media_items", "media_parts", "metadata_item_settings", "metadata_item_views"}},
			{name: "blobs", file: plexData + "/Plug-in Support/Databases/com.plexapp.plugins.library.blobs.db",
				userTables: []string{"blobs"}},
		},
		configFiles: []string{plexData + "/Preferences.xml"},
		disposable:  []string{plexData + "/Cache", plexData + "/Logs", plexData + "/Crash Reports"},
	}
)

// profiles are the apps ferry knows. The pins other than Overseerr's are
// the versions current when the profile was written; a note always asks
// the user to check the pin against the version running today, because a
// downgrade can break a database an app has already migrated.
var profiles = []profile{
	with(seerrProfile, "Overseerr", "1.34.0", "sctx/overseerr"),
	with(seerrProfile, "Jellyseerr", "2.7.3", "fallenbagel/jellyseerr"),
	{
		app: "Sonarr", repos: []string{"linuxserver/sonarr"}, pin: "4.0.15.2941-ls291",
		configDir: "/config", port: 8989, health: "/ping",
		databases: []profileDB{{name: "db", file: "sonarr.db",
			userTables: []string{"Series", "Episodes", "EpisodeFiles", "History", "QualityProfiles", "RootFolders", "Tags", "Users"}}},
		configFiles: []string{"config.xml"},
		disposable:  []string{"logs", "logs.db", "MediaCover"},
	},
	{
		app: "Radarr", repos: []string{"linuxserver/radarr"}, pin: "5.26.2.10099-ls277",
		configDir: "/config", port: 7878, health: "/ping",
		databases: []profileDB{{name: "db", file: "radarr.db",
			userTables: []string{"Movies", "MovieFiles", "MovieMetadata", "History", "QualityProfiles", "RootFolders", "Tags", "Users"}}},
		configFiles: []string{"config.xml"},
		disposable:  []string{"logs", "logs.db", "MediaCover"},
	},
	with(plexProfile, "Plex Media Server", "1.41.6.9685-d301f511a", "plexinc/pms-docker"),
	with(plexProfile, "Plex Media Server (linuxserver)", "1.41.6.9685-d301f511a-ls262", "linuxserver/plex"),
}

func with(p profile, app, pin string, repos ...string) profile {
	p.app, p.pin, p.repos = app, pin, repos
	return p
}

// lookup finds the profile for an image reference, ignoring registry, tag
// and digest: "lscr.io/linuxserver/sonarr:latest" is Sonarr.
func lookup(image string) (profile, bool) {
	repo := repository(image)
	for _, p := range profiles {
		for _, r := range p.repos {
			if repo == r {
				return p, true
			}
		}
	}
	return profile{}, false
}

// repository strips the registry host, the tag and the digest from an
// image reference, and Docker Hub's implicit "library/" prefix.
func repository(image string) string {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		name = rest
	}
	return strings.TrimPrefix(name, "library/")
}

// withTag replaces the tag (and any digest) of image, keeping its registry
// and repository as the user wrote them.
func withTag(image, tag string) string {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name + ":" + tag
}
