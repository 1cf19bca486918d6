/* scale.h — a constant that scaled.c's kernel uses: editing it must regenerate the twins. */
#ifndef SCALE_H
#define SCALE_H
static const double scale = 2.0;
#endif
