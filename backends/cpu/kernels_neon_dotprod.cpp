// The NEON kernels again, compiled with -march=armv8.2-a+dotprod (CMakeLists.txt): the block
// products use sdot. kernels.cpp picks this table when HWCAP reports the instruction.
#include "kernels_neon.cpp"
