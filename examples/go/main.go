// A small HTTP service: the Go example every multi-stage tutorial shows.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
)

type status struct {
	Service string `json:"service"`
	Go      string `json:"go"`
	Host    string `json:"host"`
}

func handler(w http.ResponseWriter, r *http.Request) {
	host, _ := os.Hostname()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(status{Service: "hello-go", Go: runtime.Version(), Host: host})
}

// selftest serves one request on a loopback port and prints the answer, so the image can be
// checked with `run IMAGE -selftest` without publishing ports.
func selftest() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, http.HandlerFunc(handler))
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("GET / -> %d %s", resp.StatusCode, body)
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	test := flag.Bool("selftest", false, "serve one request on loopback, print it and exit")
	flag.Parse()
	if *test {
		if err := selftest(); err != nil {
			log.Fatal(err)
		}
		return
	}
	http.HandleFunc("/", handler)
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
