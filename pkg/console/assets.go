package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"path"
	"strings"
)

// web holds the console's page and assets: plain HTML, CSS and JavaScript,
// no build step and no third-party code.
//
//go:embed web
var web embed.FS

// assetsPath is where the page finds its assets: relative to the page, so
// that the URL's stage (/prod/console) or custom domain base path
// (/keygate/console), which the function never sees, is kept.
const assetsPath = "console/assets/"

// asset is a file served under a content-hashed name: a new release
// changes the name, so a browser can cache each name for a year.
type asset struct {
	body        []byte
	contentType string
}

// assets are the console's and the portal's files by hashed name, and
// their pages, rendered once with those names.
type assets struct {
	byName map[string]asset  // "console.3f2a9c1b.js"
	pages  map[string][]byte // "index.html": the console, "portal.html"
}

// loadAssets hashes every file of fsys but the pages (*.html), templates
// which it renders with the hashed names ({{asset "console.js"}}).
func loadAssets(fsys fs.FS) (*assets, error) {
	a := &assets{byName: map[string]asset{}, pages: map[string][]byte{}}
	hashed := map[string]string{} // file name -> URL
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) == ".html" {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ext := path.Ext(p)
		name := strings.TrimSuffix(p, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		a.byName[name] = asset{body: body, contentType: mime.TypeByExtension(ext)}
		hashed[p] = assetsPath + name
		return nil
	})
	if err != nil {
		return nil, err
	}
	pages, err := fs.Glob(fsys, "*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range pages {
		tpl, err := template.New(name).Funcs(template.FuncMap{"asset": func(file string) (string, error) {
			u, ok := hashed[file]
			if !ok {
				return "", fmt.Errorf("no asset %q", file)
			}
			return u, nil
		}}).ParseFS(fsys, name)
		if err != nil {
			return nil, err
		}
		var page bytes.Buffer
		if err := tpl.Execute(&page, nil); err != nil {
			return nil, err
		}
		a.pages[name] = page.Bytes()
	}
	return a, nil
}

// mustLoadAssets loads the embedded files; they are part of the binary,
// so a failure is a build mistake, found by the package's tests.
func mustLoadAssets() *assets {
	sub, err := fs.Sub(web, "web")
	if err == nil {
		var a *assets
		if a, err = loadAssets(sub); err == nil {
			return a
		}
	}
	panic("console: embedded assets: " + err.Error())
}
