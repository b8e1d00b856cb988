class Rect:
    def __init__(self, w, h):
        if w < 0 or h < 0:
            raise ValueError("negative size")
        self.w = w
        self.h = h

    def area(self):
        return self.w * self.h

    def is_square(self):
        return self.w == self.h


def classify(rect):
    if rect.is_square():
        kind = "square"
    else:
        kind = "rect"
    if rect.area() == 0:
        kind = "degenerate " + kind
    return kind
