/* amx_emu.h: a C emulation of the AMX tile instructions simd/amx.c uses
 * (ldtilecfg, tilerelease, tilezero, tileloadd, tilestored, tdpbf16ps), so
 * that amx.c compiled with -DSG_AMX_EMULATE runs its packing and tile logic
 * on any CPU (tests/test_bf16). Semantics as Intel's SDM pseudocode: per
 * thread tile state, valid only between a palette-1 configuration and its
 * release (any tile instruction outside aborts, as the hardware raises #UD
 * or the tile rows are undefined); tdpbf16ps accumulates, per k-pair, the
 * even then the odd product into fp32 with round to nearest even, denormal
 * bf16 inputs read as zero; shape mismatches between the three tiles abort.
 * Denormal results are not flushed here (the tests' data never makes them). */
#ifndef SIMDGAN_AMX_EMU_H
#define SIMDGAN_AMX_EMU_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local struct {
    int configured;
    unsigned rows[8], colsb[8];
    unsigned char data[8][16][64];
} sg_emu;

static void sg_emu_fail(const char *what)
{
    fprintf(stderr, "amx_emu: %s\n", what);
    abort();
}

static void sg_emu_check(int t)
{
    if (!sg_emu.configured) sg_emu_fail("tile instruction without a tile configuration");
    if (t < 0 || t > 7 || !sg_emu.rows[t]) sg_emu_fail("tile not configured");
}

static void sg_emu_loadconfig(const void *cfg)
{
    const unsigned char *p = cfg;
    if (p[0] != 1) sg_emu_fail("palette must be 1");
    for (int t = 0; t < 8; t++) {
        sg_emu.colsb[t] = p[16 + 2 * t] | (unsigned)p[17 + 2 * t] << 8;
        sg_emu.rows[t] = p[48 + t];
        if (sg_emu.colsb[t] > 64 || sg_emu.rows[t] > 16) sg_emu_fail("tile larger than palette 1");
    }
    memset(sg_emu.data, 0, sizeof sg_emu.data);
    sg_emu.configured = 1;
}

static void sg_emu_release(void)
{
    if (!sg_emu.configured) sg_emu_fail("tilerelease without a configuration");
    sg_emu.configured = 0;
}

static void sg_emu_zero(int t)
{
    sg_emu_check(t);
    memset(sg_emu.data[t], 0, sizeof sg_emu.data[t]);
}

static void sg_emu_loadd(int t, const void *base, size_t stride)
{
    sg_emu_check(t);
    for (unsigned r = 0; r < sg_emu.rows[t]; r++)
        memcpy(sg_emu.data[t][r], (const unsigned char *)base + r * stride, sg_emu.colsb[t]);
}

static void sg_emu_stored(int t, void *base, size_t stride)
{
    sg_emu_check(t);
    for (unsigned r = 0; r < sg_emu.rows[t]; r++)
        memcpy((unsigned char *)base + r * stride, sg_emu.data[t][r], sg_emu.colsb[t]);
}

/* bf16 bits to fp32, denormals as zero. */
static float sg_emu_bf16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    if ((h & 0x7f80u) == 0) h &= 0x8000u;
    return sg_bf16_to_f32(h);
}

static void sg_emu_dpbf16ps(int c, int a, int b)
{
    sg_emu_check(c), sg_emu_check(a), sg_emu_check(b);
    if (sg_emu.rows[a] != sg_emu.rows[c] || sg_emu.colsb[a] / 4 != sg_emu.rows[b] ||
        sg_emu.colsb[b] != sg_emu.colsb[c])
        sg_emu_fail("tdpbf16ps: tile shapes do not match");
    for (unsigned m = 0; m < sg_emu.rows[c]; m++) {
        float acc[16];
        memcpy(acc, sg_emu.data[c][m], sg_emu.colsb[c]);
        for (unsigned k = 0; k < sg_emu.colsb[a] / 4; k++)
            for (unsigned n = 0; n < sg_emu.colsb[c] / 4; n++) {
                acc[n] += sg_emu_bf16(&sg_emu.data[a][m][4 * k]) *
                          sg_emu_bf16(&sg_emu.data[b][k][4 * n]);
                acc[n] += sg_emu_bf16(&sg_emu.data[a][m][4 * k + 2]) *
                          sg_emu_bf16(&sg_emu.data[b][k][4 * n + 2]);
            }
        memcpy(sg_emu.data[c][m], acc, sg_emu.colsb[c]);
    }
}

/* immintrin.h (included for amx.c's AVX-512 packs) may define these. */
#undef _tile_loadconfig
#undef _tile_release
#undef _tile_zero
#undef _tile_loadd
#undef _tile_stored
#undef _tile_dpbf16ps
#define _tile_loadconfig(cfg) sg_emu_loadconfig(cfg)
#define _tile_release() sg_emu_release()
#define _tile_zero(t) sg_emu_zero(t)
#define _tile_loadd(t, base, stride) sg_emu_loadd((t), (base), (stride))
#define _tile_stored(t, base, stride) sg_emu_stored((t), (base), (stride))
#define _tile_dpbf16ps(c, a, b) sg_emu_dpbf16ps((c), (a), (b))

#endif
