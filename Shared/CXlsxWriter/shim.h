#ifndef DUBAN_CXLSXWRITER_SHIM_H
#define DUBAN_CXLSXWRITER_SHIM_H

#include <xlsxwriter.h>

#endif
