package main

import (
	"fmt"
	"runtime/debug"

	"github.com/staydown/staydown/protocol"
	"github.com/staydown/staydown/protocol/export"
)

// versionText is what --version prints: the build (module version, the
// commit it was built from, whether the tree had changes), the protocol
// versions it speaks and the Go toolchain.
func versionText() string {
	mod, commit, modified, goVersion := "(unknown)", "(unknown)", "", "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		mod, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (with uncommitted changes)"
				}
			}
		}
	}
	return fmt.Sprintf("staydown %s\ncommit    %s%s\nprotocol  entries v%d, sync %s, export v%d\ngo        %s\n",
		mod, commit, modified, protocol.Version, protocol.SyncProtocol, export.Version, goVersion)
}
