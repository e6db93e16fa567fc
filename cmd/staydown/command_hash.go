package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/match/filehash"
)

func (c *cli) hashCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hash FILE...",
		Short: "Print the signals of files: sha256, md5, and pdq for images",
		Long: `Hash each FILE as a node's /v1/match/file does, locally (no node needed):
sha256 and md5 of the bytes and, if the file is a JPEG, PNG, GIF or WebP
image, its PDQ hash and the hash's quality (0-100; below 50 a node does
not match it). Prints one TYPE:VALUE line per signal, the form "add" and
"match" take, the pdq line followed by quality=N. With several files each
line ends with two spaces and the file's name. With --json, an array of
{"file", "size", "hashes", "image", "image_error"}.`,
		Args: args("FILE", 1, -1),
		RunE: func(cmd *cobra.Command, files []string) error {
			var all []fileHashes
			for _, name := range files {
				f, err := hashPath(name)
				if err != nil {
					return err
				}
				all = append(all, f)
			}
			if c.json {
				return c.printJSON(all)
			}
			for _, f := range all {
				for _, h := range f.Hashes {
					line := h.Type + ":" + h.Value
					if h.Quality != nil {
						line += fmt.Sprintf(" quality=%d", *h.Quality)
					}
					if len(files) > 1 {
						line += "  " + f.File
					}
					if _, err := fmt.Fprintln(c.stdout, line); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}

// fileHashes is one file's entry in `hash --json`.
type fileHashes struct {
	File       string         `json:"file"`
	Size       int64          `json:"size"`
	Hashes     []api.FileHash `json:"hashes"`
	Image      string         `json:"image"`
	ImageError string         `json:"image_error,omitempty"`
}

func hashPath(name string) (fileHashes, error) {
	f, err := os.Open(name)
	if err != nil {
		return fileHashes{}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return fileHashes{}, err
	} else if !st.Mode().IsRegular() {
		return fileHashes{}, fmt.Errorf("%s is not a regular file", display(name))
	}
	h, err := filehash.ReadSeeker(f)
	if err != nil {
		return fileHashes{}, fmt.Errorf("reading %s: %w", display(name), err)
	}
	m := api.NewFileMatch(h, false, nil)
	return fileHashes{File: name, Size: h.Size, Hashes: m.Hashes, Image: m.Image, ImageError: m.ImageError}, nil
}
