/*
 * scaled.c — a kernel whose constant lives in an included header (scale.h),
 * for the test that editing a header regenerates the twins.  The plugin tests
 * append an erroneous function to a copy of this file.
 */
#include <math.h>

#include "scale.h"

#pragma aad
double scaled_exp(double x, double y)
{
    return exp(scale * x) * y;
}
