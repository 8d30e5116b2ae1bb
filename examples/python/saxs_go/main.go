// The integrator stage of the SAXS pipeline in examples/python: it receives
// detector frames (row-major float64 images, little-endian) from a Python
// process over one ipc:// channel, reduces each to its radial profile (the
// mean intensity in each one-pixel ring around the beam centre) and sends
// the profiles back as float64 arrays over a second ipc:// channel.
//
//	saxs_go -frames ipc://NAME-frames -profiles ipc://NAME-profiles -width 128 -height 128
//
// Message types: 1 = a frame (or a profile), 2 = end of stream. The Python
// side (saxs_pipeline.py) creates both channels before starting this
// program; the same ring size on both sides makes this one attach.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

const (
	typeFrame = 1
	typeEnd   = 2
	ringSize  = 8 << 20
)

// radialProfile returns the mean of the pixels at each integer distance
// from the centre ((width-1)/2, (height-1)/2), summing in row-major order.
func radialProfile(img []float64, width, height int) []float64 {
	cx, cy := float64(width-1)/2, float64(height-1)/2
	bins := int(math.Hypot(cx, cy)) + 1
	sum := make([]float64, bins)
	count := make([]float64, bins)
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			r := int(math.Hypot(float64(x)-cx, float64(y)-cy))
			sum[r] += img[y*width+x]
			count[r]++
		}
	}
	for i := range sum {
		if count[i] > 0 {
			sum[i] /= count[i]
		}
	}
	return sum
}

func main() {
	framesURI := flag.String("frames", "", "channel the frames arrive on")
	profilesURI := flag.String("profiles", "", "channel the profiles go out on")
	width := flag.Int("width", 128, "frame width in pixels")
	height := flag.Int("height", 128, "frame height in pixels")
	flag.Parse()
	if *framesURI == "" || *profilesURI == "" {
		fmt.Fprintln(os.Stderr, "usage: saxs_go -frames URI -profiles URI [-width W -height H]")
		os.Exit(2)
	}
	frames, err := psyne.NewChannel(*framesURI, ringSize, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer frames.Close()
	profiles, err := psyne.NewChannel(*profilesURI, ringSize, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer profiles.Close()

	pixels := *width * *height
	img := make([]float64, pixels)
	n := 0
	for {
		data, typ, err := frames.ReceiveMessage(30 * time.Second)
		if err != nil {
			log.Fatal(err)
		}
		if typ == typeEnd {
			break
		}
		if typ != typeFrame || len(data) != 8*pixels {
			log.Fatalf("frame %d: type %d, %d bytes (want type %d, %d bytes)", n, typ, len(data), typeFrame, 8*pixels)
		}
		for i := range img {
			img[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
		}
		prof := radialProfile(img, *width, *height)
		out := make([]byte, 8*len(prof))
		for i, v := range prof {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(v))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = profiles.SendContext(ctx, out, typeFrame)
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	if err := profiles.SendContext(context.Background(), nil, typeEnd); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("saxs_go: integrated %d frames of %dx%d\n", n, *width, *height)
}
