"""Fact sheets of the sample corpus: fictional events written for storywire (no copied articles).

Each event has a headline stem and sentences that state its facts; articles are composed from them, so
every name and number an article holds is in its event's sheet (which keeps the grounding check honest).
"""

from __future__ import annotations

EVENTS: dict[str, dict[str, object]] = {
    "valmora-strike": {
        "headlines": [
            "Valmora dockworkers strike over port automation",
            "Strike shuts Valmora harbour cranes",
            "Valmora port strike enters second day",
            "Dockers walk out at Valmora container terminal",
        ],
        "facts": [
            "About 3,200 dockworkers at the port of Valmora stopped work on Monday in a dispute over automated cranes.",
            "Union leader Ines Carvalho said the strike would continue until the port authority withdrew its automation plan.",
            "The Valmora Port Authority said 41 container ships were waiting outside the harbour.",
            "Shipping agents estimated the stoppage was delaying cargo worth 90 million crowns a day.",
            "The automation plan would replace 14 manual cranes at the North Quay terminal by 2028.",
            "Carvalho told reporters the dockworkers had not been consulted before the plan was approved.",
            "Harbour master Tomas Reyes said perishable cargo was being moved to the smaller port of Lisca.",
            "Talks between the union and the port authority are scheduled for Thursday.",
        ],
    },
    "ardenne-flood": {
        "headlines": [
            "Ardenne River floods Riverbend",
            "Riverbend evacuates as Ardenne bursts its banks",
            "Flood waters rise in Riverbend after record rain",
            "Ardenne flood forces 1,150 from homes",
        ],
        "facts": [
            "The Ardenne River rose 4.2 metres above its normal level after three days of heavy rain.",
            "Emergency services evacuated 1,150 residents from low-lying streets of Riverbend.",
            "Operators of the Kestrel Dam opened all six flood gates to relieve pressure on the reservoir.",
            "Riverbend mayor Clara Hoffmann said two schools had been turned into emergency shelters.",
            "The regional weather office recorded 160 millimetres of rain in 72 hours.",
            "Rescue crews used boats to reach families stranded on the Mill Lane estate.",
            "No deaths have been reported, but 23 people were treated for minor injuries.",
            "Engineers will inspect the Kestrel Dam once the water level falls.",
        ],
    },
    "dunmore-solar": {
        "headlines": [
            "Dunmore Flats solar farm begins supplying power",
            "Helio Grid opens 480-megawatt solar farm",
            "Largest solar farm in the region opens at Dunmore Flats",
            "Dunmore solar park switched on",
        ],
        "facts": [
            "Helio Grid switched on its 480-megawatt solar farm at Dunmore Flats on Wednesday.",
            "The farm has 1.1 million panels spread over 900 hectares of former grazing land.",
            "Chief executive Marta Kovacs said the plant could supply electricity to 210,000 homes.",
            "Construction of the Dunmore Flats project took 26 months and cost 640 million crowns.",
            "A battery store of 120 megawatts will keep supplying power after sunset.",
            "Kovacs said Helio Grid planned a second plant near the town of Ashby.",
            "Local farmers lease the land to Helio Grid and graze sheep between the panel rows.",
            "The grid operator said the farm would cut regional emissions by 380,000 tonnes a year.",
        ],
    },
    "ellery-election": {
        "headlines": [
            "Samuel Okafor elected mayor of Port Ellery",
            "Okafor wins Port Ellery mayoral race",
            "Port Ellery voters choose Okafor as mayor",
            "New mayor for Port Ellery after tight contest",
        ],
        "facts": [
            "Samuel Okafor won the Port Ellery mayoral election with 54 percent of the vote.",
            "His rival, outgoing deputy mayor Helena Brandt, received 46 percent.",
            "Turnout was 61 percent, the highest in a Port Ellery municipal election since 2010.",
            "Okafor, a former schoolteacher, campaigned on cheaper public transport and new housing.",
            "He promised to build 2,000 affordable homes during his four-year term.",
            "Brandt conceded defeat shortly after midnight and congratulated Okafor.",
            "The new mayor will be sworn in at Port Ellery town hall on 1 December.",
            "Okafor said his first decision would be to freeze bus fares for a year.",
        ],
    },
    "halvorsen-heist": {
        "headlines": [
            "Painting stolen from Halvorsen Museum",
            "Thieves take The Amber Orchard from Halvorsen Museum",
            "Halvorsen Museum heist: police appeal for witnesses",
            "Night raid at Halvorsen Museum",
        ],
        "facts": [
            "Thieves stole the painting The Amber Orchard from the Halvorsen Museum in the early hours of Saturday.",
            "The painting by Elsa Marling is insured for 12 million crowns.",
            "Police said the thieves entered through a skylight and disabled two alarm sensors.",
            "Museum director Jonas Vik said the theft took less than eight minutes.",
            "Detective inspector Ruth Anand appealed for witnesses who saw a grey van near the museum.",
            "The Amber Orchard was painted in 1911 and had hung in the Halvorsen Museum since 1952.",
            "The museum will stay closed until Tuesday while forensic teams work in the gallery.",
            "Vik said security at the Halvorsen Museum would be reviewed.",
        ],
    },
    "quillfire-breach": {
        "headlines": [
            "Quillfire Systems reports data breach",
            "Quillfire breach exposes 2.3 million accounts",
            "Hackers hit Quillfire customer database",
            "Quillfire urges users to reset passwords",
        ],
        "facts": [
            "Quillfire Systems said attackers had copied data from 2.3 million customer accounts.",
            "The stolen records include email addresses and hashed passwords but no payment details.",
            "Quillfire chief technology officer Daniel Osei said the attack began on 9 November.",
            "The company found the intrusion 11 days later during a routine audit.",
            "Quillfire has asked every customer to reset their password and turn on two-factor login.",
            "The national data protection office said it had opened an investigation into Quillfire.",
            "Osei said the attackers used a stolen contractor password to enter the network.",
            "Quillfire shares fell 8 percent after the announcement.",
        ],
    },
    "continental-cup": {
        "headlines": [
            "Northgate Rovers win the Continental Cup",
            "Rovers beat Eastmoor 3-1 in Continental Cup final",
            "Continental Cup glory for Northgate Rovers",
            "Northgate lift Continental Cup after final win",
        ],
        "facts": [
            "Northgate Rovers beat Eastmoor United 3-1 in the Continental Cup final on Sunday.",
            "Striker Leo Marchetti scored twice for Northgate Rovers in the second half.",
            "Eastmoor United had taken the lead through a penalty by Femi Adeyemi.",
            "The final was played in front of 52,000 spectators at Harbour Stadium.",
            "It is the first Continental Cup title for Northgate Rovers since 1998.",
            "Northgate coach Anna Lindgren said the victory belonged to the whole club.",
            "Midfielder Kasper Holm sealed the win with a header in the 88th minute.",
            "The Rovers will parade the trophy through Northgate on Tuesday.",
        ],
    },
    "lumen-comet": {
        "headlines": [
            "Lumen Observatory discovers new comet",
            "Comet C/2026 K3 found by Lumen astronomers",
            "New comet spotted from Lumen Observatory",
            "Astronomers track newly found comet K3",
        ],
        "facts": [
            "Astronomers at the Lumen Observatory discovered a comet now designated C/2026 K3.",
            "The comet was first seen on images taken by the observatory's 2.4-metre telescope.",
            "Lead astronomer Priya Natarajan said the comet will pass closest to the Sun in March.",
            "Natarajan said C/2026 K3 could become visible with binoculars in early spring.",
            "The comet is currently about 480 million kilometres from Earth.",
            "Its orbit suggests it last visited the inner solar system about 6,000 years ago.",
            "The Lumen Observatory has asked amateur astronomers to report observations of the comet.",
            "Natarajan's team confirmed the discovery with two other observatories.",
        ],
    },
    "brackwater-measles": {
        "headlines": [
            "Measles outbreak at Brackwater",
            "Brackwater measles cases rise to 37",
            "Health officials act on Brackwater measles outbreak",
            "Vaccination drive after Brackwater outbreak",
        ],
        "facts": [
            "Health officials confirmed 37 cases of measles in the Brackwater district.",
            "Most of the cases are children under ten who had not been vaccinated.",
            "Brackwater General Hospital has opened an isolation ward with 20 beds.",
            "Regional health director Omar Haddad urged parents to check their children's vaccination records.",
            "Free vaccination clinics will open at four Brackwater schools this week.",
            "Haddad said vaccination rates in Brackwater had fallen to 84 percent.",
            "Four children remain in hospital, and all are in a stable condition.",
            "The outbreak began at a Brackwater nursery three weeks ago.",
        ],
    },
    "meridian-rail": {
        "headlines": [
            "Meridian Rail opens Calder to Vossberg high-speed line",
            "High-speed trains link Calder and Vossberg",
            "New rail line cuts Calder-Vossberg journey to 2 hours 10 minutes",
            "Meridian Rail line opens to passengers",
        ],
        "facts": [
            "Meridian Rail opened its high-speed line between Calder and Vossberg on Friday.",
            "Trains on the line run at up to 320 km/h.",
            "The journey between Calder and Vossberg now takes 2 hours 10 minutes instead of almost five hours.",
            "The 410-kilometre line took nine years to build and cost 7.8 billion crowns.",
            "Meridian Rail chief executive Sofia Brandl said 40 trains a day would run in each direction.",
            "Tickets for the first week sold out within hours.",
            "The line includes a 12-kilometre tunnel under the Halden Hills.",
            "Brandl said the line would take about 3,000 lorries a day off the motorway.",
        ],
    },
    "ostland-rates": {
        "headlines": [
            "Ostland central bank raises rates to 4.75 percent",
            "Ostland lifts interest rate to curb inflation",
            "Central Bank of Ostland increases rates again",
            "Ostland rate rise to 4.75 percent",
        ],
        "facts": [
            "The Central Bank of Ostland raised its main interest rate by a quarter point to 4.75 percent.",
            "Governor Petra Lindqvist said inflation of 5.1 percent was still too high.",
            "It is the third rate increase by the Central Bank of Ostland this year.",
            "Lindqvist said the bank expected inflation to fall to 3 percent by the end of next year.",
            "Seven of the nine members of the monetary committee voted for the increase.",
            "The Ostland crown rose against the euro after the decision.",
            "Mortgage lenders said monthly repayments would rise for about 400,000 households.",
            "The next rate decision of the Central Bank of Ostland is due in January.",
        ],
    },
    "pinecrest-fire": {
        "headlines": [
            "Wildfire burns near Pinecrest Ridge",
            "Pinecrest Ridge wildfire spreads to 8,400 hectares",
            "Firefighters battle blaze at Pinecrest Ridge",
            "Pinecrest wildfire forces road closures",
        ],
        "facts": [
            "A wildfire near Pinecrest Ridge has burned 8,400 hectares of forest.",
            "About 600 firefighters and 14 water-bombing aircraft are fighting the fire.",
            "Fire chief Marcus Webb said strong winds were pushing the fire towards the east.",
            "Authorities closed Route 9 between Pinecrest and Elkhorn as a precaution.",
            "Residents of 230 homes in the Pinecrest valley were told to prepare to leave.",
            "Webb said the fire was 30 percent contained on Saturday evening.",
            "The cause of the Pinecrest Ridge fire is under investigation.",
            "Smoke from the fire has reduced air quality as far away as the town of Elkhorn.",
        ],
    },
    "tessaly-festival": {
        "headlines": [
            "Tessaly Film Festival opens with Salt Roads",
            "Arjun Mehta's Salt Roads opens Tessaly festival",
            "Tessaly Film Festival begins its tenth edition",
            "Salt Roads premiere opens Tessaly Film Festival",
        ],
        "facts": [
            "The Tessaly Film Festival opened with the premiere of Salt Roads by director Arjun Mehta.",
            "Salt Roads follows three generations of salt miners on the Tessaly coast.",
            "This is the tenth edition of the Tessaly Film Festival, which runs for eleven days.",
            "Festival director Camille Laurent said 140 films from 38 countries would be shown.",
            "Mehta said he spent four years filming Salt Roads with the miners' families.",
            "Tickets for the opening night at the Grand Pavilion sold out in 20 minutes.",
            "The festival's main prize, the Silver Gull, will be awarded on the closing night.",
            "Laurent said the festival expected 90,000 visitors this year.",
        ],
    },
    "greywater-harvest": {
        "headlines": [
            "Record apple harvest in Greywater Valley",
            "Greywater Valley growers pick 91,000 tonnes of apples",
            "Greywater apple crop breaks record",
            "Bumper apple year for Greywater Valley",
        ],
        "facts": [
            "Growers in the Greywater Valley harvested a record 91,000 tonnes of apples this season.",
            "The previous record of 78,000 tonnes was set in 2019.",
            "Growers' association chair Henrik Dahl said a warm spring and no late frost helped the crop.",
            "About 2,500 seasonal pickers worked in the Greywater orchards this autumn.",
            "Dahl said prices had fallen by 12 percent because of the large supply.",
            "A new cold store in Greywater will keep apples fresh until next summer.",
            "Exports of Greywater apples to neighbouring countries rose by a third.",
            "Dahl warned that a shortage of pickers could limit next year's harvest.",
        ],
    },
}
