"""Embedded list of common English words for the ``count_letter`` family.

Shipped inline so generation never needs a download; grouped loosely by length
because word length is the difficulty knob of that family.
"""

from __future__ import annotations

_RAW = """
cat dog sun hat red bed cup box fox pig egg ant bee car bus map pen cow owl jam
tea sky ice arm leg eye ear toy key net art bag bat bow cap fan fig hen hut jar
kit log mud nut oak pan pot rat rug saw van web wig yak zoo
book tree fish bird cake milk rain snow moon star ship frog duck lamp door wall
home road farm king ring song wind fire gold hill lake leaf nest rose sand seed
shoe sock blue pink ball bell boat coat corn desk drum bear deer goat lion wolf
rock soup salt kite nose hand foot face hair baby park city town game time
apple bread chair table water house horse mouse green happy candy cloud dream
earth fruit glass grape heart juice lemon money music night ocean paper party
pizza plant queen river robot salad sheep smile snake stone sugar tiger tooth
train truck watch whale zebra beach berry brush clock dance field honey knife
banana basket bottle bridge butter candle carrot castle cheese cherry circle
coffee cookie donkey dragon flower forest garden ginger guitar hammer island
jacket kitten ladder letter monkey orange parrot pencil pepper pillow planet
pocket potato rabbit rocket school silver spider spring summer tomato turtle
window winter yellow mirror cousin animal bubble puzzle marble
balloon bicycle blanket cabbage captain chicken diamond dolphin feather giraffe
kitchen library lettuce monster morning mustard network octopus orchard pancake
panther peanuts penguin picture pumpkin pyramid rainbow science seventy shelter
soldier student teacher thunder tractor trumpet unicorn village volcano weather
whistle airplane alphabet backpack baseball birthday building calendar cucumber
dinosaur elephant envelope football fountain hospital kangaroo mountain mushroom
notebook painting sandwich squirrel sunshine triangle umbrella vacation computer
language treasure princess skeleton pavement sweater
chocolate waterfall pineapple butterfly crocodile raspberry blueberry adventure
astronaut beautiful carpenter celebrate dangerous delicious different education
furniture important invisible lightning scientist telephone vegetable wonderful
yesterday apartment breakfast parachute spaghetti cranberry gardening newspaper
strawberry volleyball basketball helicopter watermelon restaurant playground
incredible motorcycle everything understand friendship background instrument
difference government population photograph television dictionary vocabulary
lighthouse skateboard microscope grasshopper
information environment development temperature neighborhood particularly
relationship international organization responsibility communication
opportunity independence construction performance significant traditional
grandmother marshmallow electricity imagination celebration conversation
mathematics championship encyclopedia refrigerator thermometer kindergarten
unbelievable hippopotamus extraordinary entertainment pronunciation
photographer accomplishment architecture transportation understanding
constellation investigation determination comfortable caterpillar
congratulations appreciation thunderstorm
"""

WORDS: tuple[str, ...] = tuple(dict.fromkeys(_RAW.split()))
