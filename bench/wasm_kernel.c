/*
 * The benchmark's compute kernel, one C source built twice: natively into
 * bench_wasm and to WebAssembly (wasm_kernel.wasm, an event handler whose
 * payload is the number of rounds). Each round fills 4096 words from a
 * xorshift generator, shell-sorts them and folds them into an FNV-1a hash:
 * loads, stores, compares and multiplies, the daily bread of handlers.
 */
#include <stddef.h>
#include <stdint.h>

uint32_t wasm_kernel(uint32_t rounds);

uint32_t wasm_kernel(uint32_t rounds)
{
	static uint32_t a[4096];
	uint32_t x = 2463534242u, h = 2166136261u;
	for (uint32_t r = 0; r < rounds; r++) {
		for (int i = 0; i < 4096; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			a[i] = x;
		}
		for (int gap = 2048; gap > 0; gap /= 2) {
			for (int i = gap; i < 4096; i++) {
				uint32_t t = a[i];
				int j = i;
				for (; j >= gap && a[j - gap] > t; j -= gap)
					a[j] = a[j - gap];
				a[j] = t;
			}
		}
		for (int i = 0; i < 4096; i++)
			h = (h ^ a[i]) * 16777619u;
	}
	return h;
}

#ifdef __wasm__
#include <noetl.h>

static uint64_t handle(const char *data, size_t len, noetl_result *res)
{
	uint32_t rounds = 0;
	for (size_t i = 0; i < len && data[i] >= '0' && data[i] <= '9'; i++)
		rounds = rounds * 10 + (uint32_t)(data[i] - '0');
	noetl_result_printf(res, "%u", wasm_kernel(rounds));
	return 0;
}

NOETL_EVENT(handle)
#endif
